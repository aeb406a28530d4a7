"""Fan rows out as flow runs of the `pipeline` deployment (spread over a pool's workers), wait, read results."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.deployments import arun_deployment

from flows.engine.records import read_run_result

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.objects import FlowRun

DEPLOYMENT = "boardflow-named-pipeline/pipeline"  # deployments/pipelines.py:run_named_pipeline in prefect.yaml
PAGE = 200  # the server answers 422 to a `limit` above PREFECT_SERVER_API_DEFAULT_LIMIT (200 by default)


def _client(client: PrefectClient | None) -> contextlib.AbstractAsyncContextManager[PrefectClient]:
    """The caller's open client as is, or one of our own (the profile's PREFECT_API_URL) for the call."""
    return contextlib.nullcontext(client) if client is not None else get_client()


async def submit_rows(
    deployment: str,
    pipeline: str,
    rows: Iterable[Mapping[str, Any]],
    tags: Iterable[str] | None = None,
    *,
    client: PrefectClient | None = None,
    start: int = 1,
    parameters: Mapping[str, Any] | None = None,
) -> list[UUID]:
    """One flow run of `deployment` per row, named "<pipeline> · row <n>" (n from `start`); returns their ids in
    row order. `parameters` are the deployment's other parameters (refresh, store_url…), the same for every row.

    Called inside a flow, each run is linked to it as a subflow (`arun_deployment`'s default).
    """
    tags = list(tags or [])
    async with _client(client) as api:
        runs = [
            await arun_deployment(
                deployment, client=api, parameters={**(parameters or {}), "pipeline": pipeline, "params": dict(row)},
                flow_run_name=f"{pipeline} · row {n}", tags=tags, timeout=0,
            )
            for n, row in enumerate(rows, start=start)
        ]  # fmt: skip
    return [run.id for run in runs]


async def read_runs(ids: Sequence[UUID], *, client: PrefectClient | None = None) -> list[FlowRun]:
    """The flow runs with these ids, in the order given, read at most PAGE at a time."""
    found: dict[UUID, FlowRun] = {}
    async with _client(client) as api:
        for start in range(0, len(ids), PAGE):
            chunk = list(ids[start : start + PAGE])
            runs = await api.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=chunk)), limit=PAGE)
            found.update((run.id, run) for run in runs)
    missing = [str(i) for i in ids if i not in found]
    if missing:
        raise LookupError(f"no flow run with id {', '.join(missing)}")
    return [found[i] for i in ids]


async def wait_for_runs(
    ids: Sequence[UUID], timeout: float, *, interval: float = 1.0, client: PrefectClient | None = None
) -> list[FlowRun]:
    """Poll until every run is in a final state (completed, failed, crashed, cancelled); returns them in order.

    Raises TimeoutError naming the unfinished runs and their states once `timeout` seconds have passed.
    """
    deadline = time.monotonic() + timeout
    async with _client(client) as api:
        while True:
            runs = await read_runs(ids, client=api)
            pending = [run for run in runs if run.state is None or not run.state.is_final()]
            if not pending:
                return runs
            if time.monotonic() >= deadline:
                states = ", ".join(f"{run.name}={run.state_name}" for run in pending)
                raise TimeoutError(f"{len(pending)} flow run(s) unfinished after {timeout:.0f}s: {states}")
            await asyncio.sleep(min(interval, max(deadline - time.monotonic(), 0.0)))


async def run_result(run: FlowRun) -> Any:
    """The value a finished run returned, read from its persisted result (in the workers' S3 store, or on this
    machine); a failed run's exception is raised."""
    if run.state is None:
        raise ValueError(f"flow run {run.name} has no state")
    return await read_run_result(run.state)
