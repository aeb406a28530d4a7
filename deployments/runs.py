"""Fan rows out as separate flow runs of a deployment and wait for them, over the Prefect REST API.

A batch whose rows are separate flow runs spreads over every worker of the pool (flows/batch.py runs its
rows as subflows inside one process instead). The scale-out test and bench/workers_bench.py use this.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

FINAL_STATES = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
RETRY_CODES = {429, 502, 503}
PAGE = 200  # PREFECT_SERVER_API_DEFAULT_LIMIT, the most one filter call may ask for


@dataclass
class PrefectAPI:
    """The few REST calls a fan-out needs: create runs from a deployment, read runs, list a pool's workers."""

    api_url: str
    timeout: float = 60.0

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One call; a busy server (429/502/503: SQLite locked under load) is retried with backoff up to a deadline."""
        deadline = time.monotonic() + self.timeout
        delay = 0.25
        while True:
            try:
                response = httpx.request(method, f"{self.api_url}{path}", json=body, timeout=self.timeout)
            except (httpx.ConnectError, httpx.ReadTimeout, httpx.RemoteProtocolError):
                if time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)  # a busy or restarting server: try again, like a 503
                delay = min(delay * 2, 4.0)
                continue
            if response.status_code not in RETRY_CODES or time.monotonic() + delay > deadline:
                response.raise_for_status()
                return response.json()
            time.sleep(delay)  # Prefect's own client backs off the same way on these codes
            delay = min(delay * 2, 4.0)

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        return self._request("POST", path, body)

    def deployment_id(self, name: str) -> str:
        """`flow-name/deployment-name` → id."""
        return self._request("GET", f"/deployments/name/{name}")["id"]

    def create_run(self, deployment_id: str, parameters: dict[str, Any], name: str, tags: list[str]) -> str:
        body = {"parameters": parameters, "name": name, "tags": tags, "state": {"type": "SCHEDULED"}}
        return self._post(f"/deployments/{deployment_id}/create_flow_run", body)["id"]

    def read_runs(self, ids: list[str]) -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = []
        for start in range(0, len(ids), PAGE):  # the server refuses a limit above its default (200)
            chunk = ids[start : start + PAGE]
            runs += self._post("/flow_runs/filter", {"flow_runs": {"id": {"any_": chunk}}, "limit": len(chunk)})
        order = {run_id: i for i, run_id in enumerate(ids)}
        return sorted(runs, key=lambda r: order[r["id"]])

    def online_workers(self, pool: str) -> set[str]:
        workers = self._post(f"/work_pools/{pool}/workers/filter", {})
        return {w["name"] for w in workers if w.get("status") == "ONLINE"}

    def wait_for_runs(self, ids: list[str], timeout: float, interval: float = 0.5) -> list[dict[str, Any]]:
        """Poll until every run is in a final state; TimeoutError naming the unfinished ones at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            runs = self.read_runs(ids)
            pending = [r for r in runs if r["state_type"] not in FINAL_STATES]
            if not pending:
                return runs
            if time.monotonic() > deadline:
                states = ", ".join(f"{r['name']}={r['state_name']}" for r in pending)
                raise TimeoutError(f"{len(pending)} flow run(s) unfinished after {timeout:.0f}s: {states}")
            time.sleep(interval)


def submit_rows(
    api: PrefectAPI, deployment: str, pipeline: str, rows: list[dict[str, Any]], tags: list[str] | None = None
) -> list[str]:
    """One flow run of `deployment` (deployments/pipelines.py:run_named_pipeline) per row; returns the run ids."""
    deployment_id = api.deployment_id(deployment)
    return [
        api.create_run(deployment_id, {"pipeline": pipeline, "params": row}, f"{pipeline} · row {i}", tags or [])
        for i, row in enumerate(rows, start=1)
    ]


def run_result(run: dict[str, Any]) -> Any:
    """The returned value of a finished run whose flow persists JSON results to a folder this machine can read."""
    data = (run.get("state") or {}).get("data") or {}
    key = data.get("storage_key")
    if not key:
        raise ValueError(f"flow run {run['name']} has no persisted result (state data: {data})")
    return json.loads(Path(key).read_text(encoding="utf-8"))  # the JSON serializer writes the bare value
