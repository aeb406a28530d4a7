"""Shared bits of the deployment tests: the project, its work pool, `prefect` CLI calls and client calls."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import boto3
import httpx
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import WorkerStatus
from prefect.exceptions import ObjectNotFound

from deployments.local_server import PrefectServer, free_port, prefect_executable, wait_until
from deployments.serve import deployment_specs

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]
POOL = deployment_specs(names=["pipeline"])[0]["work_pool"]["name"]  # the process pool of prefect.yaml


def run_cli(server: PrefectServer, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """A `prefect` CLI call against the server, from the project folder (where prefect.yaml lives)."""
    done = subprocess.run(
        [prefect_executable(), "--no-prompt", *args], cwd=ROOT, env=server.env(), capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    assert done.returncode == 0, f"prefect {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def on(server: PrefectServer, call: Callable[[PrefectClient], Awaitable[T]]) -> T:
    """`await call(client)` with a client of that server (the tests are synchronous; one event loop per call)."""

    async def main() -> T:
        async with PrefectClient(server.api_url) as client:
            return await call(client)

    return asyncio.run(main())


async def online_workers(client: PrefectClient, pool: str) -> set[str]:
    return {w.name for w in await client.read_workers_for_work_pool(pool) if w.status == WorkerStatus.ONLINE}


async def deployment_or_none(client: PrefectClient, name: str) -> Any:
    """`flow-name/deployment-name`, or None while it does not exist (e.g. being replaced)."""
    try:
        return await client.read_deployment_by_name(name)
    except ObjectNotFound:
        return None


def start_moto(server: PrefectServer, bucket: str) -> str:
    """An S3 API (moto's server) as a subprocess on 127.0.0.1, stopped with the server, with `bucket` in it."""
    port = free_port()
    server.spawn([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], "moto.log")
    endpoint = f"http://127.0.0.1:{port}"
    wait_until(lambda: httpx.get(f"{endpoint}/moto-api/", timeout=2).status_code == 200, 60, "moto S3 server")
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    return endpoint
