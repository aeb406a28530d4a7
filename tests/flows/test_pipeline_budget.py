"""max_cost_usd: a plan over the cap runs nothing; during a run no paid step is submitted once spend would cross it."""

from __future__ import annotations

from decimal import Decimal

from flows.pipeline import PipelineFailedError
from flows.reporting.costs import artifact_key, from_dollars
from generators.errors import BudgetExceededError
from tests.flows.kit import Echo, by_step, flow_run_artifacts, run_spec, table_data, task_runs


def paid_steps(name: str, texts: list[str], cap: str, chained: bool) -> dict:
    steps = {}
    for i, text in enumerate(texts):
        steps[f"p{i + 1}"] = {"generator": "test/paid", "inputs": {"text": text}}
        if chained and i:
            steps[f"p{i + 1}"]["after"] = [f"p{i}"]
    return {"name": name, "max_cost_usd": cap, "steps": steps}


async def test_a_plan_over_the_cap_is_refused_before_anything_runs(prefect_api, data_dir, registry):
    paid = registry.register(Echo("test/paid", provider="payg", estimate="0.30"))
    state, exc = await run_spec(paid_steps("over-plan", ["a", "b", "c", "d"], "1.00", chained=False))
    assert state.is_failed()
    assert isinstance(exc, BudgetExceededError)
    assert "plans $1.20, over max_cost_usd $1.00; nothing was run" in str(exc)
    assert "Raise max_cost_usd above 1.20" in exc.hint
    assert paid.calls == []
    assert await task_runs(state.state_details.flow_run_id) == []


async def test_no_paid_step_is_submitted_once_spend_would_cross_the_cap(prefect_api, data_dir, registry):
    # Estimated at $0.30 but billed $0.60: the plan ($0.90) fits under $1.00, the real spend does not.
    paid = registry.register(Echo("test/paid", provider="payg", estimate="0.30", actual="0.60"))
    free = registry.register(Echo("test/free"))
    spec = paid_steps("over-run", ["one", "two", "three"], "1.00", chained=True)
    spec["steps"]["tidy"] = {"generator": "test/free", "inputs": {"text": "free work"}, "after": ["p2"]}
    state, exc = await run_spec(spec)

    assert state.is_failed()
    assert [c.text for c in paid.calls] == ["one", "two"]  # p2 fitted: $0.60 spent + $0.30 ≤ $1.00
    assert [c.text for c in free.calls] == ["free work"], "a free step needs no budget"
    assert isinstance(exc, PipelineFailedError) and list(exc.failures) == ["p3"]
    assert "p3 was not submitted: spent $1.20" in exc.failures["p3"]
    assert "would cross max_cost_usd $1.00" in exc.failures["p3"]

    artifacts = await flow_run_artifacts(state.state_details.flow_run_id)
    table = artifacts[artifact_key("over-run", "costs")]
    rows = by_step(table_data(table))
    assert {step: rs[0]["status"] for step, rs in rows.items()} == {
        "p1": "completed",
        "p2": "completed",
        "p3": "failed",
        "tidy": "completed",
    }
    assert sum(from_dollars(r[0]["actual"]) for r in rows.values()) == Decimal("1.20")
    assert "not submitted" in rows["p3"][0]["error"] and rows["p1"][0]["error"] == ""
    summary = artifacts[artifact_key("over-run", "cost-summary")]
    assert "spent $1.20**" in summary.data and "did not complete:** `p3`" in summary.data
