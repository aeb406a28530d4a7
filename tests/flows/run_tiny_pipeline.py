"""Runs the tiny test pipeline in a process of its own and prints its cost records (cross-process cache test).

Run: python -m tests.flows.run_tiny_pipeline   (with BOARDFLOW_DATA_DIR and PREFECT_API_URL set by the caller)
"""

from __future__ import annotations

import asyncio
import json

import flows  # noqa: F401  (offline Prefect defaults before prefect is imported)
from generators import builtin
from generators.registry import Registry, use_registry
from tests.flows.kit import Echo, tiny_spec

RECORDS_MARK = "RECORDS "


def main() -> None:
    registry = Registry()
    for gen in builtin.generators():
        registry.register(gen)
    registry.register(Echo())
    from flows.pipeline import run_pipeline

    with use_registry(registry):  # what get_registry() returns in this run
        result = asyncio.run(run_pipeline(spec=tiny_spec()))
    print(RECORDS_MARK + json.dumps(result.model_dump(mode="json")["records"]), flush=True)


if __name__ == "__main__":
    main()
