"""Runs the flows the UI check looks at, against the server in PREFECT_API_URL; prints their flow run ids as JSON.

Run: python -m tests.ui.make_runs   (the caller sets PREFECT_API_URL, PREFECT_HOME and BOARDFLOW_DATA_DIR)
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import flows  # noqa: F401  (offline Prefect defaults before prefect is imported)
from deployments.params import load_params

RUNS_MARK = "RUNS "
BATCH_CSV = Path(__file__).resolve().parents[2] / "deployments" / "batches" / "slideshow-small.csv"


async def run_storyboard() -> str:
    from flows.storyboard import storyboard

    state = await storyboard(**load_params("storyboard-preview"), return_state=True)
    if not state.is_completed():
        raise RuntimeError(f"storyboard run ended {state.name}: {state.message}")
    return str(state.state_details.flow_run_id)


async def run_batch() -> str:
    from flows.batch.flow import batch

    state = await batch(spec="slideshow", rows=str(BATCH_CSV), return_state=True)
    if not state.is_completed():
        raise RuntimeError(f"batch run ended {state.name}: {state.message}")
    return str(state.state_details.flow_run_id)


def main() -> None:
    runs = {"storyboard": asyncio.run(run_storyboard()), "batch": asyncio.run(run_batch())}
    print(RUNS_MARK + json.dumps(runs), flush=True)


if __name__ == "__main__":
    main()
