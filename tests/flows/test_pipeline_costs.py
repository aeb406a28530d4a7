"""Cost records → tally → Prefect table/markdown artifacts, read back from the API; savings of a cached re-run."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from typer.testing import CliRunner

from cli.app import app
from flows.pipeline import plan_pipeline
from flows.pipeline.spec import PipelineSpec
from flows.reporting.costs import artifact_key, read_history
from tests.flows.kit import Echo, by_step, flow_run_artifacts, run_spec, table_data

LEDGER = {
    "name": "ledger",
    "steps": {
        "billed": {"generator": "test/billed", "inputs": {"text": "a poster"}},
        "guessed": {"generator": "test/guessed", "inputs": {"text": "a jingle"}},
        "free": {"generator": "test/echo", "inputs": {"text": "notes", "source": "${steps.billed.text}"}},
    },
}


def money(records: list[dict], column: str) -> Decimal:
    return sum((Decimal(str(r[column])) for r in records), Decimal(0))


async def test_tally_artifacts_and_history_agree_with_the_records(prefect_api, data_dir, data_store, registry):
    registry.register(Echo("test/billed", provider="acme", estimate="0.30", actual="0.25"))  # the provider reports
    registry.register(Echo("test/guessed", provider="tunes", estimate="0.10"))  # no report: the estimate stands
    registry.register(Echo())
    state, result = await run_spec(LEDGER)
    assert state.is_completed(), result
    records = result["records"]
    steps = {step: rs[0] for step, rs in by_step(records).items()}
    assert (steps["billed"]["actual_usd"], steps["billed"]["actual_is_estimate"]) == ("0.25", False)
    assert (steps["guessed"]["actual_usd"], steps["guessed"]["actual_is_estimate"]) == ("0.10", True)
    assert result["totals"] == {"estimated_usd": "0.40", "actual_usd": "0.35", "saved_usd": "0"}
    assert money(records, "actual_usd") == Decimal("0.35") and money(records, "estimated_usd") == Decimal("0.40")

    flow_run_id = state.state_details.flow_run_id
    artifacts = await flow_run_artifacts(flow_run_id)
    assert {artifact_key("ledger", s) for s in ("costs", "cost-summary")} <= set(artifacts)
    rows = {r["step"]: r for r in table_data(artifacts["ledger-costs"])}
    # What a person reads on the card: named columns, money in dollars, an estimate standing in marked ≈.
    assert list(rows["billed"]) == [
        "step", "generator", "provider", "status", "estimated", "actual", "saved", "seconds"
    ]  # fmt: skip
    assert {k: rows["billed"][k] for k in ("generator", "estimated", "actual", "saved")} == {
        "generator": "test/billed", "estimated": "$0.30", "actual": "$0.25", "saved": "$0.00"
    }  # fmt: skip
    assert (rows["guessed"]["actual"], rows["free"]["actual"]) == ("≈$0.10", "$0.00")
    summary = artifacts["ledger-cost-summary"]
    assert "spent $0.35** (planned $0.40)" in summary.data
    assert "| acme | 1 | 0 | $0.30 | $0.25 | $0.00 |" in summary.data
    assert "1 paid step(s) reported no actual cost" in summary.data
    for card in (summary, artifacts["ledger-costs"]):  # a description is one line of text: no table in it
        assert card.description.startswith("**Cost of `ledger`: spent $0.35**") and "\n" not in card.description
        assert "|" not in card.description

    history = await read_history("ledger")
    mine = history[history["flow_run_id"] == str(flow_run_id)]
    assert len(mine) == len(records) and round(mine["actual_usd"].sum(), 6) == 0.35
    assert round(mine["estimated_usd"].sum(), 6) == 0.40 and list(mine["actual_is_estimate"]).count(True) == 1
    assert set(mine["provider"]) == {"acme", "tunes", "test"}

    plan = await plan_pipeline(PipelineSpec.parse(LEDGER), {}, data_store)
    assert [sum(s.cached) for s in plan.steps] == [1, 1, 1]
    assert plan.total_usd == 0 and plan.saved_usd == Decimal("0.40")  # a plan prices hits at their estimates
    state, again = await run_spec(LEDGER)
    assert all(r["cached"] for r in again["records"])
    assert again["totals"] == {"estimated_usd": "0", "actual_usd": "0", "saved_usd": "0.35"}

    by_provider = await asyncio.to_thread(
        CliRunner().invoke, app, ["costs", "--pipeline", "ledger", "--by", "provider"], env={"COLUMNS": "160"}
    )
    assert by_provider.exit_code == 0, by_provider.output
    acme = next(line for line in by_provider.output.splitlines() if "acme" in line)
    # two runs, one of them from the cache: $0.30 planned and $0.25 spent once, $0.25 saved once
    assert acme.replace("│", " ").split() == ["acme", "2", "2", "1", "$0.30", "$0.25", "$0.25"]
