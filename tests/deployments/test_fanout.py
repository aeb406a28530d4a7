"""deployments/fanout.py against a real server, no worker: runs named per row, read back in order, page by page."""

from __future__ import annotations

import asyncio
from uuid import uuid4

import pytest
from prefect.client.orchestration import PrefectClient
from prefect.exceptions import UnfinishedRun
from prefect.settings import PREFECT_API_URL, temporary_settings

from deployments import fanout
from deployments.local_server import PrefectServer
from tests.deployments.kit import on

pytestmark = pytest.mark.slow


def test_rows_become_named_runs_read_in_row_order_and_a_wait_names_the_unfinished(deployed: PrefectServer, monkeypatch):
    rows = [{"prompt": f"scene {n}", "seed": n} for n in range(5)]
    ids = on(deployed, lambda c: fanout.submit_rows(fanout.DEPLOYMENT, "slideshow", rows, tags=["fanout"], client=c))
    try:
        assert len(set(ids)) == len(rows)
        monkeypatch.setattr(fanout, "PAGE", 2)  # three pages for five runs
        runs = on(deployed, lambda c: fanout.read_runs(list(reversed(ids)), client=c))
        assert [r.id for r in runs] == list(reversed(ids))
        monkeypatch.undo()
        with temporary_settings({PREFECT_API_URL: deployed.api_url}):  # no client given: the profile's server
            runs = asyncio.run(fanout.read_runs(ids))
        assert [r.name for r in runs] == [f"slideshow · row {n}" for n in range(1, 6)]
        assert [r.parameters["params"] for r in runs] == rows
        assert all(r.parameters["pipeline"] == "slideshow" and "fanout" in r.tags for r in runs)
        assert {r.state.type.value for r in runs} == {"SCHEDULED"}  # no worker here to pick them up

        with pytest.raises(TimeoutError, match=r"5 flow run\(s\) unfinished after 0s: slideshow · row 1=Scheduled"):
            on(deployed, lambda c: fanout.wait_for_runs(ids, timeout=0, client=c))
        with pytest.raises(UnfinishedRun):
            asyncio.run(fanout.run_result(runs[0]))
        with pytest.raises(LookupError, match="no flow run with id"):
            on(deployed, lambda c: fanout.read_runs([*ids, uuid4()], client=c))
    finally:
        on(deployed, lambda c: delete_runs(c, ids))  # nothing left for the scale-out test's workers to pick up


async def delete_runs(client: PrefectClient, ids: list) -> None:
    for run_id in ids:
        await client.delete_flow_run(run_id)
