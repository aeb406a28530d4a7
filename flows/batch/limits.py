"""What holds a batch back across processes: per-provider concurrency through Prefect global concurrency limits.

The batch's budget is the pipeline's `Budget`, one for all rows (flows.pipeline.limits).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ..pipeline.limits import LocalSlots, provider_limit

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
        self._local = LocalSlots()
        self._semaphores = {p: asyncio.Semaphore(n) for p, n in global_limits.items()}

    @asynccontextmanager
    async def slot(self, provider: str) -> AsyncIterator[None]:
        from prefect.concurrency.asyncio import concurrency

        if provider not in self.global_limits:
            async with self._local.slot(provider):
                yield
            return
        async with (
            self._semaphores[provider],
            concurrency(limit_name(provider), occupy=1, strict=True, raise_on_lease_renewal_failure=False),
        ):
            yield
