"""fal and Replicate clients against the fake server: status flows, waiting, cancel, uploads, failed jobs."""

from __future__ import annotations

import io

import httpx
import pytest
from PIL import Image

from generators.errors import ProviderInputError, RateLimitError, TransientProviderError
from generators.providers.fal import FalClient
from generators.providers.replicate import ReplicateClient
from tests.fakes import media

FAST = {"poll_interval": 0.01, "max_poll_interval": 0.05}


async def test_fal_submit_wait_result_walks_the_queue_states(fake):
    fake.set(queue_seconds=0.3, job_seconds=0.3)
    seen: list[str] = []
    async with FalClient(**FAST) as fal:
        job = await fal.submit("fal-ai/flux/dev", {"prompt": "a red barn", "image_size": "square"})
        # fal's URLs name the app (fal-ai/flux), not the endpoint's sub-path; the client keeps them as given.
        assert "/fal-ai/flux/requests/" in job.status_url and "/dev/" not in job.status_url
        status = await fal.wait(job, timeout=10, progress=lambda f, m: seen.append(m))
        result = await fal.result(job)
    assert status.status == "COMPLETED" and status.error is None
    assert any("queued" in m for m in seen) and any("running" in m for m in seen)
    (image,) = result["images"]
    assert (image["width"], image["height"]) == (512, 512)
    assert fake.submissions("fal", "fal-ai/flux/dev")[0].input["prompt"] == "a red barn"


async def test_fal_cancel_of_a_queued_request_and_of_a_finished_one(fake):
    fake.set(queue_seconds=30)
    async with FalClient(**FAST) as fal:
        job = await fal.submit("fal-ai/flux/schnell", {"prompt": "x"})
        assert await fal.cancel(job) == "CANCELLATION_REQUESTED"
        status = await fal.status(job)
        assert status.status == "COMPLETED" and status.error  # a cancelled request ends without output
        fake.set(queue_seconds=0, job_seconds=0)
        done = await fal.submit("fal-ai/flux/schnell", {"prompt": "y"})
        await fal.wait(done, timeout=5)
        assert await fal.cancel(done) == "ALREADY_COMPLETED"


async def test_fal_upload_puts_bytes_on_the_cdn_without_sending_the_key(fake, tmp_path):
    src = tmp_path / "in.png"
    src.write_bytes(media.image(64, 48, "png"))
    async with FalClient() as fal:
        url = await fal.upload(src, "image/png")
    # The fake CDN refuses any Authorization but its token, so reaching here means the key was not sent there.
    async with httpx.AsyncClient() as http:
        served = (await http.get(url)).content
    assert served == src.read_bytes()


async def test_fal_polling_rides_out_429s_and_5xx_then_succeeds(fake):
    fake.set(job_seconds=0.1)
    async with FalClient(**FAST) as fal:
        job = await fal.submit("fal-ai/flux/schnell", {"prompt": "x"})
        fake.fail_next("fal", 429, retry_after=0.05)
        fake.fail_next("fal", 503, times=2)
        status = await fal.wait(job, timeout=10)
    assert status.status == "COMPLETED"
    assert len(fake.submissions("fal")) == 1


async def test_fal_wait_gives_up_at_its_deadline_and_says_the_job_can_be_rejoined(fake):
    fake.set(job_seconds=30)
    async with FalClient(**FAST) as fal:
        job = await fal.submit("fal-ai/flux/schnell", {"prompt": "x"})
        with pytest.raises(TransientProviderError, match="rejoin"):
            await fal.wait(job, timeout=0.2)


async def test_fal_failed_request_reports_its_error(fake):
    fake.set(fail_jobs=True)
    async with FalClient(**FAST) as fal:
        job = await fal.submit("fal-ai/flux/schnell", {"prompt": "x"})
        status = await fal.wait(job, timeout=5)
    assert status.error == "the model crashed (fake)"


async def test_replicate_official_model_and_version_predictions(fake):
    fake.set(job_seconds=0.1)
    async with ReplicateClient(**FAST) as rep:
        by_model = await rep.create(model="black-forest-labs/flux-schnell", input={"prompt": "x", "megapixels": "0.25"})
        by_version = await rep.create(
            version="671ac645ce5e552cc63a54a2bbff63fcf798043055d2dac5fc9e36a837eedcfb",
            input={"prompt": "a waltz", "duration": 2},
        )
        assert not by_model.done and by_model.output is None
        done_model = await rep.wait(by_model, timeout=10)
        done_version = await rep.wait(by_version, timeout=10)
    assert done_model.status == "succeeded" and isinstance(done_model.output, list)
    assert done_version.status == "succeeded" and done_version.output.endswith(".wav")
    assert done_version.metrics.predict_time == pytest.approx(0.1, abs=0.01)


async def test_replicate_prefer_wait_answers_with_the_output_when_it_is_quick(fake):
    fake.set(job_seconds=0.2)
    async with ReplicateClient() as rep:
        prediction = await rep.create(model="black-forest-labs/flux-schnell", input={"prompt": "x"}, wait_seconds=5)
    assert prediction.status == "succeeded" and prediction.output


async def test_replicate_cancel_stops_a_running_prediction(fake):
    fake.set(job_seconds=30)
    async with ReplicateClient(**FAST) as rep:
        prediction = await rep.create(model="black-forest-labs/flux-schnell", input={"prompt": "x"})
        canceled = await rep.cancel(prediction.id)
        assert canceled.status == "canceled"
        assert (await rep.wait(prediction, timeout=5)).status == "canceled"


async def test_replicate_uploaded_file_is_what_the_model_reads(fake, tmp_path):
    src = tmp_path / "small.png"
    src.write_bytes(media.image(40, 30, "png"))
    async with ReplicateClient(**FAST) as rep:
        uploaded = await rep.upload(src, "image/png")
        prediction = await rep.create(
            version="f121d640bd286e1fdc67f9799164c1d5be36ff74576ee11c803ae5b665dd46aa",
            input={"image": uploaded.urls.get, "scale": 3},
        )
        done = await rep.wait(prediction, timeout=10)
    assert uploaded.size == src.stat().st_size
    async with httpx.AsyncClient() as http:
        out = Image.open(io.BytesIO((await http.get(done.output)).content))
    assert out.size == (120, 90)  # the upscaler saw our 40x30 upload


async def test_replicate_failed_prediction_carries_the_error(fake):
    fake.set(fail_jobs=True)
    async with ReplicateClient(**FAST) as rep:
        prediction = await rep.create(model="black-forest-labs/flux-schnell", input={"prompt": "x"})
        done = await rep.wait(prediction, timeout=5)
    assert done.status == "failed" and done.error == "the model crashed (fake)"


async def test_replicate_rate_limit_on_create_is_not_billed(fake):
    fake.fail_next("replicate", 429, retry_after=2)
    async with ReplicateClient() as rep:
        with pytest.raises(RateLimitError) as info:
            await rep.create(model="black-forest-labs/flux-schnell", input={"prompt": "x"})
    assert info.value.retry_after == 2 and fake.submissions() == []


def test_fal_uploads_go_to_rest_fal_ai_and_large_files_in_parts_like_the_official_clients():
    from generators.providers import fal

    assert fal.REST_URL == "https://rest.fal.ai"  # not the legacy rest.alpha.fal.ai
    assert fal.MULTIPART_THRESHOLD == 90 * 1024 * 1024  # under fal_client's 100 MiB


async def test_fal_upload_above_the_threshold_goes_up_in_parts_the_cdn_accepts(fake, tmp_path):
    fake.set(fal_max_body=64 * 1024)  # a CDN that refuses one large body, scaled down
    src = tmp_path / "clip.bin"
    src.write_bytes(bytes(range(256)) * 1000)  # 256,000 bytes
    async with FalClient(multipart_threshold=64 * 1024, part_size=64 * 1024) as fal:
        url = await fal.upload(src, "video/mp4")
    async with httpx.AsyncClient() as http:
        assert (await http.get(url)).content == src.read_bytes()
    puts = [size for method, path, size in fake.cdn_requests if method == "PUT"]
    assert puts == [65536, 65536, 65536, 59392]
    async with FalClient() as fal:  # the default threshold: one POST, which this fake CDN refuses as too large
        with pytest.raises(ProviderInputError, match="Payload Too Large"):
            await fal.upload(src, "video/mp4")
