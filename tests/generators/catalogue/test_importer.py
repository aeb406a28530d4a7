"""`boardflow generators import`: a provider's published schema (served by the fake) -> an entry -> a run."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from cli.app import app
from flows.pipeline.flow import plan_pipeline
from flows.pipeline.spec import PipelineSpec
from generators.catalogue.importer import import_model
from generators.errors import BudgetExceededError, ConfigurationError, InputError, InputValidationError
from generators.providers.fal import FalClient
from tests.fakes import media

FAL_SEEDVR = "fal:fal-ai/seedvr/upscale/image"


async def test_a_fal_endpoint_becomes_an_entry_with_the_providers_fields_bounds_and_enums(fake, tmp_path):
    path, doc = await import_model(FAL_SEEDVR, tmp_path)
    assert path == tmp_path / "fal--seedvr-upscale-image.yaml"
    (written,) = yaml.safe_load(path.read_text())
    assert written == doc
    assert (doc["id"], doc["model"], doc["kind"], doc["output"]) == (
        "fal/seedvr-upscale-image",
        "fal-ai/seedvr/upscale/image",
        "image",
        {"field": "image"},
    )
    props = doc["input"]["properties"]
    assert props["image_url"]["x-artifact"] == "image" and doc["input"]["required"] == ["image_url"]
    assert (props["upscale_factor"]["minimum"], props["upscale_factor"]["maximum"]) == (1, 10)
    assert props["target_resolution"]["enum"] == ["720p", "1080p", "1440p", "2160p"]
    assert props["seed"] == {"type": "integer", "description": "Random seed."}  # anyOf [int, null] -> optional int
    assert doc["price"]["unknown"] is True
    assert doc["schema_source"].startswith("https://fal.ai/api/openapi/queue/openapi.json?endpoint_id=")


async def test_an_imported_fal_entry_runs_against_the_fake(fake, hosted_ctx, tmp_path, registry):
    await import_model(FAL_SEEDVR, tmp_path)
    registry.load_catalogue(tmp_path)
    gen = registry.get("fal/seedvr-upscale-image").configured(poll_interval=0.01, max_poll_interval=0.05)
    assert gen.provider == "fal" and gen.priced is False
    photo = await hosted_ctx.store_image_result(media.image(60, 40, "png", 3))
    result = await gen.run({"image_url": photo, "upscale_factor": 3}, hosted_ctx)
    assert (result.primary.width, result.primary.height) == (180, 120)
    assert result.primary.parents == (photo.sha256,)
    with pytest.raises(InputValidationError, match="upscale_factor"):  # the provider's bound, refused first
        gen.parse_inputs({"image_url": photo, "upscale_factor": 11})


async def test_a_replicate_model_imports_from_its_latest_versions_openapi_schema_and_runs(
    fake, hosted_ctx, tmp_path, registry
):
    _, doc = await import_model("replicate:tencentarc/gfpgan", tmp_path)
    assert (doc["id"], doc["kind"], doc["output"]) == ("replicate/tencentarc-gfpgan", "image", {"shape": "uri"})
    assert doc["version"] == "0fbacf7afc6c144e5be9767cff80f25aff23e52b0708f17e20f9879b2f21516c"
    assert doc["input"]["properties"]["version"]["enum"] == ["v1.2", "v1.3", "v1.4", "RestoreFormer"]
    registry.load_catalogue(tmp_path)
    gen = registry.get("replicate/tencentarc-gfpgan").configured(poll_interval=0.01, max_poll_interval=0.05)
    face = await hosted_ctx.store_image_result(media.image(50, 40, "png", 2))
    result = await gen.run({"img": face, "scale": 2}, hosted_ctx)
    assert (result.primary.width, result.primary.height) == (100, 80)


async def test_an_unpriced_model_is_refused_under_a_budget_cap_and_planned_as_unknown_without(
    fake, tmp_path, registry, store
):
    await import_model(FAL_SEEDVR, tmp_path)
    registry.load_catalogue(tmp_path)
    photo = {"sha256": "a" * 64, "storage_url": "file:///x.png", "format": "png", "size_bytes": 1}
    photo |= {"width": 10, "height": 10}
    steps = {"up": {"generator": "fal/seedvr-upscale-image", "inputs": {"image_url": photo}}}
    capped = PipelineSpec.model_validate({"name": "capped", "max_cost_usd": 5, "steps": steps})
    plan = await plan_pipeline(capped, {}, store=store, registry=registry)
    assert plan.over_budget and plan.unpriced_steps == ["up"]
    uncapped = PipelineSpec.model_validate({"name": "free", "steps": steps})
    plan = await plan_pipeline(uncapped, {}, store=store, registry=registry)
    assert not plan.over_budget and plan.rows()[0]["estimate_usd"] is None

    from flows.pipeline.limits import Budget

    call = plan.steps[0].calls[0]
    with pytest.raises(BudgetExceededError, match="no known price") as info:
        Budget(Decimal(5)).reserve(call, owner=object())
    assert "catalogue entry" in (info.value.hint or "")


async def test_the_strict_fake_rejects_what_the_fal_schema_refuses_and_fal_bills_it(fake, tmp_path):
    src = tmp_path / "in.png"
    src.write_bytes(media.image(20, 20, "png"))
    async with FalClient(poll_interval=0.01) as fal:
        url = await fal.upload(src, "image/png")
        job = await fal.submit("fal-ai/seedvr/upscale/image", {"image_url": url, "upscale_factor": 50})
        status = await fal.wait(job, timeout=10)
        assert status.error
        with pytest.raises(Exception) as info:
            await fal.result(job)
    assert getattr(info.value, "status_code", None) == 422
    assert '"loc": ["body", "upscale_factor"]' in (info.value.body or "")
    assert len(fake.submissions("fal")) == 1  # queued, run and refused: fal may bill it


@pytest.mark.parametrize(
    ("headers", "content"), [({"Content-Type": "text/plain"}, b"{}"), ({"Content-Type": "application/json"}, b"{")]
)
async def test_the_fake_answers_a_wrong_content_type_or_malformed_json_with_400(fake, headers, content):
    key = {"Authorization": f"Key {fake.knobs.keys['fal']}"}
    async with httpx.AsyncClient() as http:
        answer = await http.post(f"{fake.url}/fal/queue/fal-ai/flux/dev", headers=key | headers, content=content)
    assert answer.status_code == 400 and fake.submissions() == []


async def test_a_second_import_of_the_same_id_needs_force_and_a_bad_reference_says_what_to_write(fake, tmp_path):
    await import_model(FAL_SEEDVR, tmp_path)
    with pytest.raises(ConfigurationError, match="already exists"):
        await import_model(FAL_SEEDVR, tmp_path)
    await import_model(FAL_SEEDVR, tmp_path, force=True)
    with pytest.raises(InputError, match="fal:<endpoint-id>"):
        await import_model("midjourney:v7", tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fal--seedvr-upscale-image.yaml"]  # no temp file left


def test_the_import_command_writes_into_the_catalogue_folder_and_says_the_price_is_unknown(fake, tmp_path):
    env = {"COLUMNS": "200", "BOARDFLOW_CATALOGUE_DIR": str(tmp_path / "cat")}
    result = CliRunner().invoke(app, ["generators", "import", FAL_SEEDVR], env=env)
    assert result.exit_code == 0, result.output
    assert "fal/seedvr-upscale-image" in result.output and "price: unknown" in result.output
    assert (tmp_path / "cat" / "fal--seedvr-upscale-image.yaml").exists()
    again = CliRunner().invoke(app, ["generators", "import", FAL_SEEDVR], env=env)
    assert again.exit_code == 1 and "--force" in again.output and "Traceback" not in again.output
