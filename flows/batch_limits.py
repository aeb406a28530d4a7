"""What holds a batch back: per-provider concurrency (Prefect global concurrency limits) and a shared budget."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from generators.errors import BudgetExceededError

from .costs import usd
from .pipeline import provider_limit

LIMIT_PREFIX = "boardflow-provider-"
# Local steps use this machine's cores, so their limit is per process (provider_limit("local") = CPU count);
# a limit shared through the server would let one machine's steps hold back another's idle cores. It would
# also cost API writes per step, which on SQLite collide and back off (Prefect answers 503) for seconds.
PER_PROCESS = {"local"}


def limit_name(provider: str) -> str:
    return f"{LIMIT_PREFIX}{provider}"


async def ensure_provider_limits(providers: set[str]) -> dict[str, int]:
    """The Prefect global concurrency limit of each hosted provider, created (at provider_limit) when missing.

    Without a limit created first, Prefect's `concurrency()` only warns and lets everything through. An
    existing limit wins over the default, so `prefect gcl update boardflow-provider-fal --limit 4` tunes
    it for every machine that shares the server.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    limits: dict[str, int] = {}
    async with get_client() as client:
        for provider in sorted(providers - PER_PROCESS):
            name = limit_name(provider)
            try:
                found = await client.read_global_concurrency_limit_by_name(name)
            except ObjectNotFound:
                try:
                    await client.create_global_concurrency_limit(
                        GlobalConcurrencyLimitCreate(name=name, limit=provider_limit(provider))
                    )
                except ObjectAlreadyExists:
                    pass  # another run created it between our read and our create
                found = await client.read_global_concurrency_limit_by_name(name)
            limits[provider] = max(1, found.limit) if found.active else provider_limit(provider)
    return limits


class ProviderSlots:
    """At most `limit` steps of a provider at once. Hosted providers: across processes and machines through
    Prefect's global concurrency limit, and within this batch through a semaphore first, so waiters here queue
    in order instead of polling the API. Local steps: the semaphore alone (see PER_PROCESS)."""

    def __init__(self, global_limits: dict[str, int]) -> None:
        self.global_limits = global_limits
        self._local: dict[str, asyncio.Semaphore] = {p: asyncio.Semaphore(n) for p, n in global_limits.items()}

    @asynccontextmanager
    async def slot(self, provider: str) -> AsyncIterator[None]:
        from prefect.concurrency.asyncio import concurrency

        if provider not in self._local:
            self._local[provider] = asyncio.Semaphore(provider_limit(provider))
        if provider not in self.global_limits:
            async with self._local[provider]:
                yield
            return
        name = limit_name(provider)
        async with (
            self._local[provider],
            concurrency(name, occupy=1, strict=True, raise_on_lease_renewal_failure=False),
        ):
            yield


@dataclass
class SharedBudget:
    """The batch's cap while it runs: no paid step starts when spent + running + it could cross the cap.

    A step whose result is already stored reserves nothing, and rows making the same step (same cache key)
    reserve it once: one of them makes it, the others wait for it and are served from the cache.
    """

    cap: Decimal | None
    runners: list[Any] = field(default_factory=list)  # the PipelineRunners of the rows, for what they spent
    _held: dict[tuple[int, str], tuple[str | None, Decimal]] = field(default_factory=dict)

    def committed(self) -> Decimal:
        running: dict[Any, Decimal] = {}
        for (runner, label), (key, estimate) in self._held.items():
            slot = key if key is not None else (runner, label)
            running[slot] = max(running.get(slot, Decimal(0)), estimate)
        return sum((r.spent for r in self.runners), Decimal(0)) + sum(running.values(), Decimal(0))

    def reserve(self, runner: Any, label: str, estimate: Decimal, key: str | None) -> None:
        committed = self.committed()
        shared = key is not None and any(k == key for k, _ in self._held.values())
        extra = Decimal(0) if shared else estimate
        if self.cap is not None and extra > 0 and committed + extra > self.cap:
            raise BudgetExceededError(
                f"{label} was not submitted: the batch has spent or started {usd(committed)}, and this step "
                f"({usd(estimate)}) would cross its cap {usd(self.cap)}.",
                planned_usd=committed + extra,
                cap_usd=self.cap,
            )
        self._held[(id(runner), label)] = (key, estimate)

    def release(self, runner: Any, label: str) -> None:
        self._held.pop((id(runner), label), None)
