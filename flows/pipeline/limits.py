"""What holds a run back: how many steps of a provider run at once, and the money it may still commit.

A runner takes both as collaborators: a single run gets its own (`LocalSlots`, `Budget`); the rows of a
batch share the batch's (`flows.batch.limits.ProviderSlots` and one `Budget` for the whole batch).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from decimal import Decimal
from typing import Protocol

from generators.errors import BudgetExceededError

from ..reporting.costs import usd
from .bind import StepCall


def provider_limit(provider: str) -> int:
    """How many steps of one provider run at once: $BOARDFLOW_CONCURRENCY_<PROVIDER>, else a default."""
    default = max(1, os.cpu_count() or 1) if provider == "local" else 8
    return int(os.environ.get(f"BOARDFLOW_CONCURRENCY_{provider.upper()}", default))


class Slots(Protocol):
    def slot(self, provider: str) -> AbstractAsyncContextManager[None]: ...


class LocalSlots:
    """At most `provider_limit(provider)` steps of each provider at once, within this process."""

    def __init__(self) -> None:
        self._semaphores: dict[str, asyncio.Semaphore] = {}

    def semaphore(self, provider: str) -> asyncio.Semaphore:
        if provider not in self._semaphores:
            self._semaphores[provider] = asyncio.Semaphore(provider_limit(provider))
        return self._semaphores[provider]

    @asynccontextmanager
    async def slot(self, provider: str) -> AsyncIterator[None]:
        async with self.semaphore(provider):
            yield


class Budget:
    """The cap while steps run: no paid step starts when spent + running + it could cross the cap.

    A step whose result is already stored reserves nothing, and steps with the same cache key (identical
    work: one makes it, the others are served from the cache) reserve it once. `owner` tells apart the
    runners sharing one budget (the rows of a batch), so equal labels of two rows do not collide.
    """

    def __init__(self, cap: Decimal | None, what: str = "max_cost_usd") -> None:
        self.cap = cap
        self.what = what
        self.spent = Decimal(0)
        self._held: dict[tuple[int, str], tuple[str | None, Decimal]] = {}

    def running(self) -> Decimal:
        by_work: dict[object, Decimal] = {}
        for slot, (key, estimate) in self._held.items():
            work = key if key is not None else slot
            by_work[work] = max(by_work.get(work, Decimal(0)), estimate)
        return sum(by_work.values(), Decimal(0))

    def reserve(self, call: StepCall, owner: object) -> None:
        estimate = Decimal(0) if call.lookup.usable else call.estimate
        if self.cap is not None and not call.lookup.usable and not call.generator.priced:
            raise BudgetExceededError(
                f"{call.label} was not submitted: {call.generator.name} has no known price, so {self.what} "
                f"{usd(self.cap)} cannot be kept.",
                planned_usd=self.spent + self.running(),
                cap_usd=self.cap,
                hint="Add the provider's price to its catalogue entry (price.terms), or run without a cap.",
            )
        shared = call.key is not None and any(k == call.key for k, _ in self._held.values())
        extra = Decimal(0) if shared else estimate
        running = self.running()
        if self.cap is not None and extra > 0 and self.spent + running + extra > self.cap:
            raise BudgetExceededError(
                f"{call.label} was not submitted: spent {usd(self.spent)} + running {usd(running)} "
                f"+ this step {usd(estimate)} would cross {self.what} {usd(self.cap)}.",
                planned_usd=self.spent + running + extra,
                cap_usd=self.cap,
            )
        self._held[(id(owner), call.label)] = (call.key, estimate)

    def settle(self, call: StepCall, owner: object, spent: Decimal) -> None:
        """The step ended: what it spent counts, its reservation goes."""
        self._held.pop((id(owner), call.label), None)
        self.spent += spent
