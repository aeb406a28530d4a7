"""The one typed event stream of a run: what the runners say happened, for displays and reports to follow.

A run emits into the sink of the context it runs in (`subscribe(sink)` around the flow call sets it); with
none subscribed, events go nowhere. The sink is a context variable, not module state: two runs in one
process (or one test after another) each see only their own subscriber.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from generators.base import GeneratorResult

    from .reporting.costs import CostRecord


@dataclass(frozen=True)
class RunStarted:
    pipeline: str
    flow_run_id: str | None
    planned_steps: int  # step runs the plan counted (for_each items included)


@dataclass(frozen=True)
class StepStarted:
    label: str  # "clip[2]"
    generator: str
    fallback: bool = False


@dataclass(frozen=True)
class StepProgress:
    label: str
    fraction: float  # 0..1, as the generator published it
    message: str = ""


@dataclass(frozen=True)
class StepDone:
    label: str
    record: CostRecord
    result: GeneratorResult


@dataclass(frozen=True)
class StepFailed:
    label: str
    error: str


@dataclass(frozen=True)
class StepSkipped:
    label: str
    reason: str


@dataclass(frozen=True)
class RunFinished:
    pipeline: str
    records: list[CostRecord]


@dataclass(frozen=True)
class BatchPlanned:
    plan: Any  # flows.batch.rows.BatchPlan


@dataclass(frozen=True)
class RowDone:
    result: Any  # flows.batch.results.RowResult
    done: int
    failed: int
    total: int


@dataclass(frozen=True)
class BatchFinished:
    summary: dict[str, Any]
    results: list[Any]  # RowResult, by row


Event = (
    RunStarted
    | StepStarted
    | StepProgress
    | StepDone
    | StepFailed
    | StepSkipped
    | RunFinished
    | BatchPlanned
    | RowDone
    | BatchFinished
)
EventSink = Callable[[Event], None]


def discard(event: Event) -> None:
    """The sink of a run nobody follows."""


_sink: ContextVar[EventSink] = ContextVar("boardflow_event_sink", default=discard)


@contextmanager
def subscribe(sink: EventSink) -> Iterator[EventSink]:
    """Runs started inside this block (in this context and the tasks it starts) send their events to `sink`,
    and to whatever an enclosing block subscribed (a test following a CLI command sees what its display sees)."""
    outer = _sink.get()

    def both(event: Event) -> None:
        outer(event)
        sink(event)

    token = _sink.set(sink if outer is discard else both)
    try:
        yield sink
    finally:
        _sink.reset(token)


def current_sink() -> EventSink:
    return _sink.get()
