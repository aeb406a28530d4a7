"""The session-wide fake provider server keeps each test's records to itself: a request that arrived before
`reset()` (a slow answer the previous test gave up on) is not billed to the next test. That is the suspected cause
of `test_every_entry[elevenlabs/*]` once counting 2 submissions instead of 1 (notes/stop15.md)."""

from __future__ import annotations

import asyncio

from generators.providers.elevenlabs import ElevenLabsClient
from tests.fakes.fixtures import wait_until


async def test_a_request_that_arrived_before_reset_is_not_billed_to_the_next_test(fake, tmp_path):
    fake.set(latency=1.0)  # the request sleeps in the fake before it is handled (and billed)
    async with ElevenLabsClient() as eleven:
        earlier = asyncio.create_task(
            eleven.text_to_speech(
                "voice",
                {"text": "late", "model_id": "eleven_flash_v2_5"},
                output_format="mp3_44100_128",
                dest=tmp_path / "late.mp3",
            )
        )
        await wait_until(lambda: fake.in_flight == 1, what="the request to reach the fake")
        fake.reset()  # what the fixture does between two tests
        await earlier  # the earlier test's request finishes after the reset
    assert fake.submissions() == [] and fake.history == []
