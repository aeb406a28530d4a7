"""Inspection commands: generators list/show, costs across runs, lineage of an artifact."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from generators.errors import BoardflowError, InputError

from .common import console, fail, require_api


def generators_list(
    type_: Annotated[
        str | None, typer.Option("--type", help="Only this artifact type (image, video, audio, text).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Every generator: id, type, provider, and whether it can run here (and if not, the fix)."""
    from generators.registry import get_registry

    registry = get_registry()
    listings = registry.list(type_)
    if as_json:
        console.print_json(
            json.dumps(
                [
                    {
                        "id": listing.generator.name,
                        "type": listing.generator.artifact_type,
                        "provider": listing.generator.provider,
                        "available": listing.usable,
                        "status": listing.generator.lifecycle.status,
                        "status_date": _iso(listing.generator.lifecycle.date),
                        "replacement": listing.generator.lifecycle.replacement,
                        "priced": listing.generator.priced,
                        "reason": listing.availability.reason or ("disabled" if not listing.enabled else ""),
                        "fix": listing.availability.fix,
                    }
                    for listing in listings
                ]
            )
        )
        return
    table = Table(title=f"{len(listings)} generators", box=None, pad_edge=False)
    table.add_column("id", no_wrap=True)  # what a user copies into a spec: never cut
    table.add_column("type", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("runs here", overflow="fold")
    for listing in listings:
        availability, life = listing.availability, listing.generator.lifecycle
        if life.status == "shut_down":
            instead = f": use {life.replacement}" if life.replacement else ""
            why = f"[red]no[/]: shut down {_iso(life.date)}{escape(instead)}"
        elif not listing.enabled:
            why = "[red]no[/]: disabled in the config file"
        elif listing.usable:
            why = "[green]yes[/]"
        else:
            why = f"[red]no[/]: {escape(_short_reason(availability.reason))}"
        if life.status == "deprecated" and not why.startswith("[red]"):
            why += f" (until {_iso(life.date)})"
        status = {"active": "active", "deprecated": "[yellow]deprecated[/]", "shut_down": "[red]shut down[/]"}
        table.add_row(listing.generator.name, listing.generator.artifact_type, status[life.status], why)
    console.print(table)
    if any(not listing.usable for listing in listings):
        console.print("How to enable one: [bold]boardflow generators show ID[/]")
    for name, err in registry.plugin_errors.items():
        console.print(f"[red]plugin {name} failed to load:[/] {err}")


def _iso(day) -> str | None:
    return day.isoformat() if day is not None else None


def _short_reason(reason: str) -> str:
    """The first clause of an availability reason ("FAL_KEY is not set."), for one table cell."""
    return reason.split(";")[0].strip().rstrip(".") or "unavailable"


def generators_show(generator_id: Annotated[str, typer.Argument(help="Generator id, e.g. local/ken-burns.")]) -> None:
    """Input and output JSON schema and the cost model of one generator."""
    from generators.registry import get_registry

    try:
        gen = get_registry().get(generator_id)
    except BoardflowError as exc:
        fail(exc)
    avail = gen.availability()
    console.print(f"[bold]{gen.name}[/] (version {gen.version}, {gen.artifact_type}, provider {gen.provider})")
    console.print(gen.description)
    console.print(f"[bold]cost model:[/] {gen.cost_model}")
    if gen.lifecycle.status != "active":
        console.print(f"[bold]status:[/] {escape(gen.lifecycle.message(gen.name, gen.provider))}", soft_wrap=True)
    if (spec := getattr(gen, "spec", None)) is not None:
        console.print(f"[bold]schema from:[/] {spec.schema_source} (checked {spec.schema_checked.isoformat()})")
    console.print(f"[bold]available:[/] {'yes' if avail.ok else f'no — {escape(avail.reason)}'}")
    if not avail.ok and avail.fix:
        console.print(f"[bold]to enable it:[/] {escape(avail.fix)}", soft_wrap=True)
    console.print("[bold]input schema:[/]")
    console.print_json(json.dumps(gen.get_input_schema().model_json_schema()))
    console.print("[bold]output schema:[/]")
    console.print_json(json.dumps(gen.get_output_schema().model_json_schema()))


def costs(
    by: Annotated[str, typer.Option(help="Group by: day, pipeline, provider or generator.")] = "day",
    pipeline: Annotated[str | None, typer.Option(help="Only runs of this pipeline.")] = None,
    csv: Annotated[Path | None, typer.Option(help="Also write every cost row to this CSV file.")] = None,
) -> None:
    """Spending across runs, read from the cost tables Prefect stored (works against a shared server)."""
    from flows.reporting.costs import read_history, usd

    if by not in ("day", "pipeline", "provider", "generator"):
        fail(InputError(f"--by {by!r} is not one of day, pipeline, provider, generator."))
    try:
        require_api()
    except BoardflowError as exc:
        fail(exc)
    df = asyncio.run(read_history(pipeline))
    if df.empty:
        console.print("No cost records yet: run a pipeline first (`boardflow demo`).")
        return
    if csv:
        df.to_csv(csv, index=False)
        console.print(f"wrote {len(df)} rows to {csv}")
    # A cache hit was planned but not spent: count only executed steps' estimates, as each run's tally does.
    df["estimated_usd"] = df["estimated_usd"].where(~df["cached"].astype(bool), 0.0)
    grouped = (
        df.groupby(by)
        .agg(
            runs=("flow_run_id", "nunique"),
            steps=("step", "count"),
            cached=("cached", "sum"),
            estimated=("estimated_usd", "sum"),
            actual=("actual_usd", "sum"),
            saved=("saved_usd", "sum"),
        )
        .reset_index()
    )
    table = Table(title=f"Costs by {by}")
    for col in grouped.columns:
        table.add_column(str(col), justify="left" if col == by else "right")
    for row in grouped.itertuples(index=False):
        table.add_row(
            *(
                usd(v) if col in ("estimated", "actual", "saved") else str(v)
                for col, v in zip(grouped.columns, row, strict=True)
            )
        )
    console.print(table)


def lineage(
    artifact: Annotated[str, typer.Argument(help="sha256 (or a unique prefix), a store URL, or a path in the store.")],
) -> None:
    """The tree of generators and inputs that produced an artifact (from the store's sidecars)."""
    from flows.reporting.lineage import find_sha
    from flows.reporting.lineage import lineage as lineage_of

    from .display import lineage_tree

    try:
        sha = asyncio.run(find_sha(artifact))
        root = asyncio.run(lineage_of(sha))
    except BoardflowError as exc:
        fail(exc)
    console.print(lineage_tree(root))


def generators_import(
    source: Annotated[
        str,
        typer.Argument(
            help="fal:<endpoint-id> (e.g. fal:fal-ai/seedvr/upscale/image) or replicate:<owner>/<name> "
            "(e.g. replicate:tencentarc/gfpgan).",
            metavar="PROVIDER:MODEL",
        ),
    ],
    kind: Annotated[
        str | None, typer.Option(help="What the model makes (image, video, audio, text) when its schema does not say.")
    ] = None,
    entry_id: Annotated[
        str | None, typer.Option("--id", help="The boardflow id to give it (default: from the model).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an entry of the same id.")] = False,
) -> None:
    """Add any fal or Replicate model to your catalogue, from the provider's own published schema.

    Reads the model's OpenAPI (fal publishes one per endpoint; Replicate returns the latest version's
    openapi_schema, which needs REPLICATE_API_TOKEN) and writes one YAML entry into the catalogue folder
    (BOARDFLOW_CATALOGUE_DIR, default <data folder>/catalogue). The entry's price is `unknown`: `plan`
    says so, and a pipeline with max_cost_usd refuses the step until you add a price to the entry.
    """
    from generators.catalogue.importer import import_model
    from generators.settings import get_settings

    if kind is not None and kind not in ("image", "video", "audio", "text"):
        fail(InputError(f"--kind {kind!r} is not one of image, video, audio, text."))
    folder = get_settings().catalogue_dir
    try:
        path, doc = asyncio.run(import_model(source, folder, kind=kind, entry_id=entry_id, force=force))
    except BoardflowError as exc:
        fail(exc)
    inputs = ", ".join(doc["input"]["properties"])
    console.print(f"wrote [bold]{doc['id']}[/] ({doc['kind']}) to {path}", soft_wrap=True)
    console.print(f"inputs: {escape(inputs)}", soft_wrap=True)
    console.print(
        f"price: unknown — add one to the entry from {doc['price']['source']} before running it under a budget cap.",
        soft_wrap=True,
    )
