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


def dollars(value: Decimal) -> str:
    """Exact dollars for a card: at least two decimals, every further digit kept (`$0.00`, `$0.0125`, `$1.50`).

    The card is also what `read_history` reads back, so nothing is rounded away.
    """
    text = format(value.normalize(), "f")
    whole, _, cents = text.partition(".")
    return f"-${whole.lstrip('-')}.{cents.ljust(2, '0')}" if value < 0 else f"${whole}.{cents.ljust(2, '0')}"


ESTIMATE_MARK = "≈"  # an actual cost the provider did not report: the estimate stands in


def from_dollars(cell: Any) -> Decimal:
    """A money cell back to Decimal: `$0.0125`, `≈$0.10`, or a plain number (tables written before 2026-12-03)."""
    if isinstance(cell, str):
        return Decimal(cell.replace(ESTIMATE_MARK, "").replace("$", "") or "0")
    return Decimal(str(cell or 0))


def table_row(r: CostRecord) -> dict[str, Any]:
    """One step as a cost-table row: the columns a person reads, money as dollars (raw figures are in the run's
    result, `PipelineRun.records`)."""
    guessed = r.actual_is_estimate and not r.cached and r.actual_usd > 0
    row: dict[str, Any] = {
        "step": r.step,
        "generator": r.generator,
        "provider": r.provider,
        "status": r.status,
        "estimated": dollars(r.estimated_usd),
        "actual": (ESTIMATE_MARK if guessed else "") + dollars(r.actual_usd),
        "saved": dollars(r.saved_usd),
        "seconds": round(r.wall_seconds, 1),
    }
    if r.error:
        row["error"] = r.error
    if r.remade:
        row["remade"] = r.remade
    if r.possible_duplicates:
        row["possible duplicates"] = r.possible_duplicates
    return row


def table_rows(records: list[CostRecord]) -> list[dict[str, Any]]:
    """Rows for a Prefect table artifact (JSON-safe)."""
    return same_columns([table_row(r) for r in records])


OPTIONAL_COLUMNS = {"error": "", "remade": "", "possible duplicates": 0}


def same_columns(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The optional columns (`error`, `remade`, `possible duplicates`) in every row when any step has one, in none
    otherwise: the UIs take a table's columns from its rows."""
    present = {name: empty for name, empty in OPTIONAL_COLUMNS.items() if any(name in row for row in rows)}
    return (
        [{**row, **{name: row.get(name, empty) for name, empty in present.items()}} for row in rows]
        if present
        else rows
    )


def summary_line(what: str, records: list[CostRecord]) -> str:
    """The totals in one line of plain markdown: an artifact's description.

    Descriptions are one line of text and no table: the V1 card shows a description's first line only,
    and V2 renders a markdown table in a description (card and page header) without cell spacing, so
    its cells ran together ("providerstepscached…"; seen in Chromium, Prefect 3.9.1, 2026-12-03).
    """
    t = totals(records)
    return (
        f"**Cost of {what}: spent {usd(t['actual_usd'])}** (planned {usd(t['estimated_usd'])}), "
        f"**saved {usd(t['saved_usd'])}** by cache · {sum(r.cached for r in records)}/{len(records)} "
        f"steps from cache"
    )


def summary_markdown(what: str, records: list[CostRecord]) -> str:
    """The cost summary's body: the totals line, then a table per provider (a body's tables render well)."""
    lines = [
        summary_line(what, records),
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
        lines += [
            "",
            f"_{len(flagged)} paid step(s) reported no actual cost; their estimate is counted "
            f"(marked {ESTIMATE_MARK} in the cost table)._",
        ]
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
    await publish_tally(pipeline, "", table_rows(records), records, f"`{pipeline}`")


async def publish_tally(
    pipeline: str, kind: str, rows: list[dict[str, Any]], records: list[CostRecord], what: str
) -> None:
    """`<pipeline>-<kind>costs` (the rows) and `<pipeline>-<kind>cost-summary`, each described by the totals."""
    from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact

    line = summary_line(what, records)
    await acreate_table_artifact(key=artifact_key(pipeline, f"{kind}costs"), table=rows, description=line)
    await acreate_markdown_artifact(
        key=artifact_key(pipeline, f"{kind}cost-summary"), markdown=summary_markdown(what, records), description=line
    )


async def read_history(pipeline: str | None = None, limit: int = 200) -> pd.DataFrame:
    """Cost rows of past runs, read back from the Prefect API's table artifacts (works on a shared server).

    Each step is counted once: a batch's parent run lists every row's steps (`<pipeline>-batch-costs`),
    so the cost tables of its row subflows are left out. A batch stopped before its end published no
    parent table, and its rows' own tables count.
    """
    import json

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, ArtifactFilterType
    from prefect.client.schemas.sorting import ArtifactSort

    keys = [artifact_key(pipeline, "costs"), artifact_key(pipeline, "batch-costs")] if pipeline else None
    key_filter = ArtifactFilterKey(any_=keys) if keys else ArtifactFilterKey(like_="-costs")
    async with get_client() as client:
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=key_filter, type=ArtifactFilterType(any_=["table"])),
            sort=ArtifactSort.CREATED_DESC,
            limit=limit,
        )
        artifacts = [a for a in artifacts if a.key and a.key.endswith("-costs")]
        batches = [a.flow_run_id for a in artifacts if a.key and a.key.endswith("-batch-costs") and a.flow_run_id]
        in_batches = await _subflow_ids(client, batches)
    rows = []
    for art in artifacts:
        if art.flow_run_id in in_batches or not art.key:
            continue
        suffix = "-batch-costs" if art.key.endswith("-batch-costs") else "-costs"
        data = json.loads(art.data) if isinstance(art.data, str) else art.data
        for row in data or []:
            rows.append(
                {
                    **history_row(row, art.key.removesuffix(suffix)),
                    "created": art.created,
                    "flow_run_id": str(art.flow_run_id),
                }
            )
    df = pd.DataFrame(rows)
    if not df.empty:
        df["created"] = pd.to_datetime(df["created"], utc=True)
        df["day"] = df["created"].dt.strftime("%Y-%m-%d")
    return df


def history_row(row: dict[str, Any], pipeline: str) -> dict[str, Any]:
    """A cost-table row (either shape: dollars since 2026-12-03, raw numbers before) as numbers."""
    if "estimated_usd" in row:  # a table written before 2026-12-03
        return {**row, "pipeline": row.get("pipeline") or pipeline}
    actual = row.get("actual", 0)
    return {
        "pipeline": pipeline,
        **({"row": row["row"]} if "row" in row else {}),
        "step": row.get("step"),
        "generator": row.get("generator"),
        "provider": row.get("provider"),
        "status": row.get("status"),
        "estimated_usd": float(from_dollars(row.get("estimated", 0))),
        "actual_usd": float(from_dollars(actual)),
        "actual_is_estimate": isinstance(actual, str) and actual.startswith(ESTIMATE_MARK),
        "cached": row.get("status") == "cached",
        "saved_usd": float(from_dollars(row.get("saved", 0))),
        "wall_seconds": row.get("seconds", 0.0),
        "error": row.get("error", ""),
    }


async def _subflow_ids(client: Any, parents: list[Any]) -> set[Any]:
    """Ids of every subflow run of these runs (paged: a batch has a subflow per row that ran)."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    found: set[Any] = set()
    if not parents:
        return found
    page = 200
    flow_run_filter = FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=parents))
    while True:
        runs = await client.read_flow_runs(flow_run_filter=flow_run_filter, limit=page, offset=len(found))
        found |= {r.id for r in runs}
        if len(runs) < page:
            return found
