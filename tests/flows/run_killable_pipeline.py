"""A pipeline to SIGKILL half-way: a long ffmpeg render beside a step that waits; or a quick one (the next start).

Run: python -m tests.flows.run_killable_pipeline NAME {long|quick}   (BOARDFLOW_DATA_DIR, PREFECT_API_URL, TMPDIR
set by the caller). The long one never finishes by itself: the caller kills it once both steps are under way.
"""

from __future__ import annotations

import asyncio
import sys

import flows  # noqa: F401  (offline Prefect defaults before prefect is imported)
from generators import builtin
from generators.registry import Registry, use_registry
from tests.flows.kit import Echo


def long_spec(name: str) -> dict:
    return {
        "name": name,
        "steps": {
            "still": {"generator": "local/procedural-image", "inputs": {"prompt": "a lighthouse", "size": "512x512"}},
            "render": {  # a minute of 1080p: ffmpeg is busy far longer than the test waits
                "generator": "local/ken-burns",
                "inputs": {"image": "${steps.still.image}", "resolution": "1920x1080", "duration": 60, "fps": 30},
            },
            "hold": {"generator": "test/slow", "inputs": {"text": "hold"}},
        },
    }


def quick_spec(name: str) -> dict:
    return {"name": name, "steps": {"hello": {"generator": "test/echo", "inputs": {"text": name}}}}


def main(name: str, kind: str) -> None:
    registry = Registry()
    for gen in builtin.generators():
        registry.register(gen)
    registry.register(Echo())
    registry.register(Echo("test/slow", work_seconds=3600))
    from flows.pipeline import run_pipeline

    with use_registry(registry):
        asyncio.run(run_pipeline(spec=long_spec(name) if kind == "long" else quick_spec(name)))


if __name__ == "__main__":
    main(*sys.argv[1:3])
