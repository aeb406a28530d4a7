"""The hosted storyboard (fal stills and clips, OpenAI narration, local cut/score/mix) end to end on the fake server."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import av
import pytest

from flows.pipeline import run_pipeline
from flows.pipeline.spec import PipelineSpec
from tests.fakes.fixtures import fake  # noqa: F401  (fixture)

SPEC = Path(__file__).resolve().parents[2] / "pipelines" / "storyboard-hosted.yaml"
SCENES = [
    {"prompt": "a red lighthouse", "narration": "The lighthouse."},
    {"prompt": "blue mountains at night", "narration": "The mountains."},
]


@pytest.mark.slow
async def test_hosted_storyboard_runs_end_to_end_and_bills_each_job_once(prefect_api, data_dir, registry, fake):  # noqa: F811
    spec = PipelineSpec.load(SPEC)
    result = (await run_pipeline(spec=spec, params={"scenes": SCENES})).model_dump(mode="json")

    billed = {(s.provider, s.model) for s in fake.submissions()}
    assert len(fake.submissions("fal")) == 4 and len(fake.submissions("openai")) == 2, billed
    video = result["outputs"]["video"]
    path = Path(video["storage_url"].removeprefix("file://"))
    with av.open(str(path)) as container:
        kinds = {s.type for s in container.streams}
        size = (container.streams.video[0].codec_context.width, container.streams.video[0].codec_context.height)
    assert kinds == {"video", "audio"} and size == (1280, 720)
    clip_seconds = [r for r in result["records"] if r["step"].startswith("narrated[")]
    assert len(clip_seconds) == 2 and video["duration"] > 2

    by_gen = {}
    for r in result["records"]:
        by_gen.setdefault(r["generator"], []).append(r)
    hosted = [r for r in result["records"] if r["provider"] != "local"]
    assert hosted and all(Decimal(r["actual_usd"]) > 0 for r in hosted)
    assert all(Decimal(r["actual_usd"]) == 0 for r in by_gen["local/mix"])
    assert Decimal(result["totals"]["actual_usd"]) == sum(Decimal(r["actual_usd"]) for r in result["records"])

    # Run it again: every step comes from the cache, nothing is submitted, the money is reported as saved.
    again = (await run_pipeline(spec=spec, params={"scenes": SCENES})).model_dump(mode="json")
    assert len(fake.submissions()) == 6
    assert all(r["cached"] for r in again["records"])
    assert Decimal(again["totals"]["actual_usd"]) == 0
    assert Decimal(again["totals"]["saved_usd"]) == Decimal(result["totals"]["actual_usd"])
    assert again["outputs"]["video"]["sha256"] == video["sha256"]
