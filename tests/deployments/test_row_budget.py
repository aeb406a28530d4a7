"""The batch's cap while rows run on workers (deployments/worker_batch.py:RowBudget): work counted once per key."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

from deployments.worker_batch import RowBudget
from flows.batch.rows import BatchRow


def row(number: int, *steps: tuple[str, str, bool]) -> BatchRow:
    """A planned row whose steps are (cache key, estimate in USD, found in the cache)."""
    planned = [
        SimpleNamespace(step=f"s{i}", estimates=[Decimal(cost)], cached=[hit], keys=[key])
        for i, (key, cost, hit) in enumerate(steps)
    ]
    return BatchRow(number, plan=SimpleNamespace(steps=planned))  # type: ignore[arg-type]


def test_shared_work_is_held_once_and_a_row_over_the_cap_is_refused_with_the_sums():
    budget = RowBudget(cap=Decimal("1.00"))
    assert budget.reserve(row(1, ("music", "0.50", False), ("a", "0.20", False))) is None
    assert budget.reserve(row(2, ("music", "0.50", False), ("b", "0.20", False))) is None  # music held by row 1
    refused = budget.reserve(row(3, ("music", "0.50", False), ("c", "0.20", False)))
    assert refused == ("not run: spent $0.00 + running $0.90 + this row $0.20 would cross the batch's cap $1.00"), (
        refused
    )


def test_finished_rows_free_what_they_held_and_count_what_they_spent():
    budget = RowBudget(cap=Decimal("1.00"))
    first = row(1, ("music", "0.50", False), ("a", "0.40", False))
    assert budget.reserve(first) is None
    budget.settle(first, Decimal("0.30"))  # cheaper than estimated
    # music is made now (a cache hit for later rows); 0.30 spent + 0.60 new work fits under 1.00
    assert budget.reserve(row(2, ("music", "0.50", False), ("b", "0.60", False))) is None
    assert budget.reserve(row(3, ("cached", "5.00", True))) is None  # nothing new to make
    assert RowBudget(cap=None).reserve(row(4, ("x", "99", False))) is None
