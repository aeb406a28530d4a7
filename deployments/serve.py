"""Serve the deployments of prefect.yaml from one process (no work pool), with the same schedules and limits.

prefect.yaml stays the one description of every deployment: this module reads it and turns each entry
into `flow.to_deployment(...)`, so `prefect deploy --all` (work pool) and `boardflow serve` cannot drift.
Run as `boardflow serve` or `python -m deployments.serve`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

import flows  # noqa: F401  (offline-safe Prefect defaults before prefect loads)
from generators.errors import ConfigurationError

PROJECT_DIR = Path(__file__).resolve().parents[1]
PREFECT_YAML = PROJECT_DIR / "prefect.yaml"

SCHEDULES_NEED_A_SERVER = (
    "Without a server Prefect runs flows on a temporary in-process API, which cannot run schedules."
)


def no_server_hint(url: str | None) -> str:
    """What to do when no server answers: start one where PREFECT_API_URL points (its real port), or set it."""
    if not url:
        return (
            "Start one with `boardflow server` and paste the `export PREFECT_API_URL=…` line it prints. "
            + SCHEDULES_NEED_A_SERVER
        )
    where = urlsplit(url)
    local = where.hostname in ("127.0.0.1", "localhost", "::1")
    start = f"`boardflow server --port {where.port or 80}`" if local else f"the server at {where.hostname}"
    return f"Start {start}, or point PREFECT_API_URL at a server that is running. {SCHEDULES_NEED_A_SERVER}"


def deployment_specs(path: Path = PREFECT_YAML, names: list[str] | None = None) -> list[dict[str, Any]]:
    """The `deployments:` entries of prefect.yaml (only `names` when given), in file order."""
    config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    specs = config.get("deployments") or []
    known = [s["name"] for s in specs]
    unknown = sorted(set(names or []) - set(known))
    if unknown:
        raise ConfigurationError(
            f"{path.name} has no deployment named {', '.join(map(repr, unknown))}.",
            hint=f"Choose from: {', '.join(known)}.",
        )
    return [s for s in specs if not names or s["name"] in names]


def schedules_of(spec: dict[str, Any]) -> list[Any]:
    """prefect.yaml schedule entries (cron / interval / rrule, timezone, active, parameters) as Prefect schedules."""
    from prefect.schedules import Cron, Interval, RRule

    made = []
    for entry in spec.get("schedules") or []:
        options = {k: entry[k] for k in ("timezone", "active", "parameters", "slug") if k in entry}
        if "cron" in entry:
            made.append(Cron(entry["cron"], day_or=entry.get("day_or", True), **options))
        elif "interval" in entry:
            made.append(Interval(entry["interval"], anchor_date=entry.get("anchor_date"), **options))
        elif "rrule" in entry:
            made.append(RRule(entry["rrule"], **options))
        else:
            raise ConfigurationError(
                f"Deployment {spec['name']!r} has a schedule without cron, interval or rrule: {entry}.",
                hint="Give each entry under `schedules:` one of cron, interval (seconds) or rrule.",
            )
    return made


def concurrency_of(spec: dict[str, Any]) -> Any:
    from prefect.client.schemas.objects import ConcurrencyLimitConfig

    limit = spec.get("concurrency_limit")
    return ConcurrencyLimitConfig(**limit) if isinstance(limit, dict) else limit


def runner_deployments(names: list[str] | None = None, path: Path = PREFECT_YAML) -> list[Any]:
    """`flow.to_deployment(...)` for each prefect.yaml entry; entrypoints resolve from the project folder."""
    from prefect.flows import load_flow_from_entrypoint

    made = []
    for spec in deployment_specs(path, names):
        flow = load_flow_from_entrypoint(str(PROJECT_DIR / spec["entrypoint"]))
        made.append(
            flow.to_deployment(
                name=spec["name"],
                description=spec.get("description"),
                tags=spec.get("tags"),
                parameters=spec.get("parameters") or {},
                schedules=schedules_of(spec),
                concurrency_limit=concurrency_of(spec),
                paused=spec.get("paused"),
            )
        )
    return made


def require_server(api_url: str | None = None) -> str:
    """The API URL of a reachable Prefect server, or a ConfigurationError saying how to get one."""
    from prefect.settings import PREFECT_API_URL

    from .local_server import api_healthy

    url = api_url or PREFECT_API_URL.value()
    if not url:
        raise ConfigurationError(
            "PREFECT_API_URL is not set, so there is no Prefect server to serve to.", hint=no_server_hint(None)
        )
    if not api_healthy(url, timeout=5.0):
        raise ConfigurationError(
            f"No Prefect server answers at {url} (GET {url.rstrip('/')}/health failed).", hint=no_server_hint(url)
        )
    return url


async def pooled_conflicts(deployments: list[Any]) -> list[tuple[str, str]]:
    """(flow/deployment, work pool) of deployments that already exist on the server bound to a work pool.

    Prefect's upsert keeps the old work pool and drops the pull steps when a served deployment takes
    over such a name, and its runs then crash while loading the flow; so we ask before replacing.
    """
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    found = []
    async with get_client() as client:
        for deployment in deployments:
            name = f"{deployment.flow_name}/{deployment.name}"
            try:
                existing = await client.read_deployment_by_name(name)
            except ObjectNotFound:
                continue
            if existing.work_pool_name:
                found.append((name, existing.work_pool_name))
    return found


async def delete_deployments(names: list[str]) -> None:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        for name in names:
            await client.delete_deployment((await client.read_deployment_by_name(name)).id)


def serve_deployments(names: list[str] | None = None, limit: int | None = None, replace: bool = False) -> None:
    """Register the deployments with the server and run their flow runs here until interrupted."""
    import asyncio

    from prefect import serve

    require_server()
    # Flow runs start from the project folder, as the work-pool deployments' pull step does.
    os.chdir(PROJECT_DIR)
    deployments = runner_deployments(names)
    conflicts = asyncio.run(pooled_conflicts(deployments))
    if conflicts and not replace:
        listed = ", ".join(f"{name} (pool {pool!r})" for name, pool in conflicts)
        raise ConfigurationError(
            f"These deployments already run on a work pool: {listed}.",
            hint="Run `boardflow serve --replace` to turn them into served deployments, or keep the work pool "
            "and start a worker (`prefect worker start --pool boardflow`) instead of serving.",
        )
    if conflicts:
        asyncio.run(delete_deployments([name for name, _ in conflicts]))
    serve(*deployments, limit=limit)


if __name__ == "__main__":
    serve_deployments()
