"""Cost records per step → a tally (pandas) → table/markdown artifacts and cross-run reports (data, no terminal)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pandas as pd
from pydantic import BaseModel

COLUMNS = [
    "run_id",
    "pipeline",
    "step",
    "generator",
    "provider",
    "status",
    "estimated_usd",
    "actual_usd",
    "actual_is_estimate",
    "cached",
    "saved_usd",
    "wall_seconds",
    "compute_seconds",
]


class CostRecord(BaseModel):
    """One step (one item of a for_each) of one run."""

    run_id: str | None = None
    pipeline: str
    step: str
    generator: str
    provider: str
    status: str  # completed | cached | failed | skipped
    estimated_usd: Decimal
    actual_usd: Decimal  # what this run spent: 0 on a cache hit
    actual_is_estimate: bool  # no provider-reported figure; the estimate stands in
    cached: bool
    saved_usd: Decimal = Decimal(0)
    wall_seconds: float = 0.0
    compute_seconds: float = 0.0
    error: str | None = None
    # Why a step with a cached answer was made again: "re-made: object missing" / "re-made: bytes changed".
    remade: str | None = None
    # Paid submissions sent again after an answer was lost, with no way to find the first: maybe billed twice.
    possible_duplicates: int = 0


def frame(records: list[CostRecord]) -> pd.DataFrame:
    df = pd.DataFrame([r.model_dump() for r in records], columns=[*COLUMNS, "error", "remade", "possible_duplicates"])
    for col in ("estimated_usd", "actual_usd", "saved_usd"):
        df[col] = df[col].map(lambda v: Decimal(str(v)) if v is not None else Decimal(0))
    return df


def totals(records: list[CostRecord]) -> dict[str, Decimal]:
    return {
        "estimated_usd": sum((r.estimated_usd for r in records if not r.cached), Decimal(0)),
        "actual_usd": sum((r.actual_usd for r in records), Decimal(0)),
        "saved_usd": sum((r.saved_usd for r in records), Decimal(0)),
    }


def by_provider(records: list[CostRecord]) -> pd.DataFrame:
    if not records:
        return pd.DataFrame(columns=["provider", "steps", "cached", "estimated_usd", "actual_usd", "saved_usd"])
    df = frame(records)
    df["est_uncached"] = [r.estimated_usd if not r.cached else Decimal(0) for r in records]
    grouped = df.groupby("provider", sort=True).agg(
        steps=("step", "count"),
        cached=("cached", "sum"),
        estimated_usd=("est_uncached", "sum"),
        actual_usd=("actual_usd", "sum"),
        saved_usd=("saved_usd", "sum"),
    )
    return grouped.reset_index()


def usd(value: Decimal | float | int) -> str:
    value = Decimal(str(value))
    return f"${value:.4f}" if value and abs(value) < Decimal("0.01") else f"${value:.2f}"


def table_rows(records: list[CostRecord]) -> list[dict[str, Any]]:
    """Rows for a Prefect table artifact (JSON-safe)."""
    return [
        {
            "step": r.step,
            "generator": r.generator,
            "provider": r.provider,
            "status": r.status,
            "estimated_usd": float(r.estimated_usd),
            "actual_usd": float(r.actual_usd),
            "actual_is_estimate": r.actual_is_estimate,
            "cached": r.cached,
            "saved_usd": float(r.saved_usd),
            "wall_seconds": round(r.wall_seconds, 2),
            "compute_seconds": round(r.compute_seconds, 2),
            "run_id": r.run_id,
            "pipeline": r.pipeline,
            "error": r.error or "",
            "remade": r.remade or "",
            "possible_duplicates": r.possible_duplicates,
        }
        for r in records
    ]


def summary_markdown(pipeline: str, records: list[CostRecord]) -> str:
    t = totals(records)
    # One first line with the totals: the V1 UI's artifact card shows only a description's first line.
    lines = [
        f"**Cost of `{pipeline}`: spent {usd(t['actual_usd'])}** (planned {usd(t['estimated_usd'])}), "
        f"**saved {usd(t['saved_usd'])}** by cache · {sum(r.cached for r in records)}/{len(records)} "
        f"steps from cache",
        "",
        "| provider | steps | cached | estimated | actual | saved |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in by_provider(records).itertuples():
        lines.append(
            f"| {row.provider} | {row.steps} | {int(row.cached)} | {usd(row.estimated_usd)} | "
            f"{usd(row.actual_usd)} | {usd(row.saved_usd)} |"
        )
    flagged = [r for r in records if r.actual_is_estimate and not r.cached and r.estimated_usd > 0]
    if flagged:
        lines += ["", f"_{len(flagged)} paid step(s) reported no actual cost; their estimate is counted._"]
    remade = [r for r in records if r.remade]
    if remade:
        lines += ["", f"**{len(remade)} step(s) re-made** (their cached bytes could not be served): "]
        lines[-1] += ", ".join(f"`{r.step}` ({r.remade.removeprefix('re-made: ')})" for r in remade if r.remade)
    if duplicates := sum(r.possible_duplicates for r in records):
        lines += [
            "",
            f"**{duplicates} possible duplicate charge(s):** a paid submission's answer was lost and the provider "
            "offers no way to find the job it may have made, so it was submitted again: check the provider's "
            "billing for " + ", ".join(f"`{r.step}`" for r in records if r.possible_duplicates) + ".",
        ]
    failed = [r for r in records if r.status in ("failed", "skipped")]
    if failed:
        lines += ["", f"**{len(failed)} step(s) did not complete:** " + ", ".join(f"`{r.step}`" for r in failed)]
    return "\n".join(lines)


def artifact_key(pipeline: str, suffix: str) -> str:
    """Prefect artifact keys: lower-case letters, digits and dashes."""
    base = re.sub(r"[^a-z0-9-]+", "-", pipeline.lower()).strip("-") or "pipeline"
    return f"{base}-{suffix}"


async def publish(pipeline: str, records: list[CostRecord]) -> None:
    """Table and summary artifacts on the current flow run, keyed so they version per pipeline."""
    from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact

    summary = summary_markdown(pipeline, records)
    await acreate_table_artifact(key=artifact_key(pipeline, "costs"), table=table_rows(records), description=summary)
    await acreate_markdown_artifact(key=artifact_key(pipeline, "cost-summary"), markdown=summary, description=summary)


async def read_history(pipeline: str | None = None, limit: int = 200) -> pd.DataFrame:
    """Cost rows of past runs, read back from the Prefect API's table artifacts (works on a shared server)."""
    import json

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, ArtifactFilterType
    from prefect.client.schemas.sorting import ArtifactSort

    key_filter = (
        ArtifactFilterKey(any_=[artifact_key(pipeline, "costs")]) if pipeline else ArtifactFilterKey(like_="-costs")
    )
    async with get_client() as client:
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=key_filter, type=ArtifactFilterType(any_=["table"])),
            sort=ArtifactSort.CREATED_DESC,
            limit=limit,
        )
    rows = []
    for art in artifacts:
        data = json.loads(art.data) if isinstance(art.data, str) else art.data
        for row in data or []:
            rows.append({**row, "created": art.created, "flow_run_id": str(art.flow_run_id)})
    df = pd.DataFrame(rows)
    if not df.empty:
        df["created"] = pd.to_datetime(df["created"], utc=True)
        df["day"] = df["created"].dt.strftime("%Y-%m-%d")
    return df
