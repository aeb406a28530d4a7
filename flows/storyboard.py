"""The flagship flow: scenes → images → Ken Burns clips → narration → cut → music → one mixed MP4.

The steps live in pipelines/storyboard.yaml; this module gives them a typed Prefect flow, so a
deployment or a Python caller gets parameter validation and a form in the Prefect UI.
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from pydantic import BaseModel, Field

from flows.pipeline.flow import PipelineRun, execute_pipeline
from flows.pipeline.spec import PIPELINES_DIR, PipelineSpec

SPEC_PATH = PIPELINES_DIR / "storyboard.yaml"


class Scene(BaseModel):
    prompt: str = Field(min_length=1, max_length=1000, description="What the picture shows.")
    narration: str = Field(min_length=1, max_length=2000, description="What the voice says over it.")
    motion: str = Field(default="zoom-in", description="Ken Burns preset: zoom-in, zoom-out, pan-left, pan-right…")


def load_spec() -> PipelineSpec:
    return PipelineSpec.load(SPEC_PATH)


@flow(name="storyboard", validate_parameters=True)
async def storyboard(
    scenes: list[Scene] | None = None,
    voice: str = "en-us",
    mood: str = "calm",
    resolution: str = "1280x720",
    fps: int = 30,
    transition: str = "fade",
    seed: int = 7,
    refresh: bool = False,
    store_url: str | None = None,
    store_block: str | None = None,
) -> PipelineRun:
    """Make one narrated, scored video from scenes (the built-in four scenes when none are given).

    Outputs go to the artifact-store block named `store_block` when given, else to `store_url`, else to the
    worker's BOARDFLOW_STORE. The run form shows each argument's line below (Prefect reads this "Args:"
    section; https://docs.prefect.io/v3/advanced/form-building, checked 2026-12-03); the pipeline's params
    say the same in pipelines/storyboard.yaml, which a test keeps in step.

    Args:
        scenes: Each scene: {prompt: what the picture shows, narration: what the voice says,
            motion: optional Ken Burns preset}.
        voice: eSpeak NG voice for the narration.
        mood: Music mood: calm, upbeat, tense, dreamy or epic.
        resolution: Output video size.
        fps: Output frame rate.
        transition: Transition between scenes: cut, fade, dissolve, wipeleft…
        seed: Seed for pictures and music.
        refresh: Run every step even when a cached result exists.
        store_url: Artifact store for this run (default: the worker's BOARDFLOW_STORE).
        store_block: Name of a saved artifact-store block to use instead of `store_url`.
    """
    params: dict[str, Any] = {
        "voice": voice,
        "mood": mood,
        "resolution": resolution,
        "fps": fps,
        "transition": transition,
        "seed": seed,
    }
    if scenes:
        params["scenes"] = [s.model_dump() if isinstance(s, BaseModel) else dict(s) for s in scenes]
    return await execute_pipeline(load_spec(), params, refresh, store_url, store_block)
