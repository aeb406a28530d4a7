"""A hosted batch against a flaky provider: rows finished in one pass, and bills per result.

Run: .venv/bin/python -m bench.hosted_batch_bench [--rows 200] [--provider replicate|fal]

`boardflow`'s batch flow (each row a subflow, Prefect server started here) runs one text→image step per row
through the real provider client and generator against the fake provider server on 127.0.0.1, which answers
20 % of API requests with 429 (Retry-After: 1), 5 % with 503, and cuts the connection right after 2 % of the
submissions, having billed them. Reported: rows finished in the one pass (target: all of them, no
`--only-failed`), row re-runs the pass spent on transient faults, billed submissions per result (1.00 where
the provider's API can find a job whose submit answer was lost: Replicate's list of predictions), and the
possible duplicate charges the batch summary owns up to where it cannot (fal: each drop is one).
Exit 1 if a row is left failed, or if bills and possible duplicates do not add up to the results.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.orchestration_bench import base_env, prefect_server

MODELS = {
    "replicate": ("replicate/flux-schnell", {"prompt": "${params.prompt}", "megapixels": "0.25"}),
    "fal": ("fal/flux-schnell", {"prompt": "${params.prompt}", "image_size": {"width": 256, "height": 256}}),
}


def spec(provider: str) -> dict:
    generator, inputs = MODELS[provider]
    return {
        "name": "flaky-hosted-batch",
        "params": {"prompt": {"type": "string", "required": True}},
        "steps": {"still": {"generator": generator, "inputs": inputs}},
        "outputs": {"image": "${steps.still.images}"},
    }


async def run(rows: int, provider: str, tmp: Path) -> dict:
    from flows.batch.flow import batch
    from tests.fakes.fixtures import provider_env
    from tests.fakes.server import FakeProviderServer

    server = FakeProviderServer().start()
    os.environ.update(provider_env(server))
    drops = math.ceil(rows * 0.02)
    server.reset(job_seconds=0.5, rate_429=0.20, rate_5xx=0.05, retry_after=1.0, drop_after_submit=drops)
    started = time.perf_counter()
    try:
        state = await batch(
            spec=spec(provider),
            rows=[{"prompt": f"a lighthouse, take {i}"} for i in range(rows)],
            results_path=str(tmp / "results"),
            concurrency=8,
            return_state=True,
        )
        summary = await state.result(raise_on_failure=False)
        return {
            "seconds": time.perf_counter() - started,
            "summary": summary if isinstance(summary, dict) else {"error": str(summary)},
            "bills": len(server.submissions(provider)),
            "drops": drops - server.knobs.drop_after_submit,
        }
    finally:
        server.stop()


def main(rows: int, provider: str) -> int:
    with tempfile.TemporaryDirectory(prefix="hosted-batch-bench-") as tmp_name:
        tmp = Path(tmp_name)
        with prefect_server(tmp / "server-home") as (api_url, _):
            os.environ.update(base_env(tmp / "client-home"))
            os.environ.update(PREFECT_API_URL=api_url, BOARDFLOW_DATA_DIR=str(tmp / "data"))
            got = asyncio.run(run(rows, provider, tmp))
    s = got["summary"]
    done = int(s.get("completed", 0)) + int(s.get("cached", 0))
    duplicates = int(s.get("possible_duplicate_charges", 0))
    print(f"\nHosted batch, {rows} rows on {provider}: 20 % 429, 5 % 503, {got['drops']} connections cut after submit")
    print(f"  rows finished in one pass: {done}/{rows} (target {rows}/{rows}), wall {got['seconds']:.1f} s")
    print(f"  billed submissions: {got['bills']} = {got['bills'] / max(done, 1):.2f} per result")
    print(f"  possible duplicate charges reported: {duplicates}")
    problems = []
    if done != rows:
        problems.append(f"{rows - done} row(s) needed another pass: {s}")
    if got["bills"] != done + duplicates:
        problems.append("billed submissions exceed results plus the possible duplicates reported: a silent bill")
    for problem in problems:
        print(f"  FAILED: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--provider", choices=sorted(MODELS), default="replicate")
    args = parser.parse_args()
    sys.exit(main(args.rows, args.provider))
