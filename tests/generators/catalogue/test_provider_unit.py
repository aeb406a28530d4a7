"""A provider is one registered unit (generator class with its client and credential, entries with their prices):
a third-party package can add one, and its user catalogue entries load with it."""

from __future__ import annotations

import pytest
import yaml

from generators.catalogue import Provider, read_entries
from generators.credentials import Credential
from generators.errors import ConfigurationError
from generators.hosted.fal import FalGenerator
from generators.providers.fal import FalClient
from generators.providers.http import ProviderInfo
from generators.registry import Registry

ACME = ProviderInfo(
    name="acme",
    credential=Credential("ACME_KEY", "acme", "https://acme.example/keys"),
    billing_url="https://acme.example",
)


class AcmeClient(FalClient):  # a fal-compatible queue at another host, as a reseller might run
    info = ACME
    base_url_env = "ACME_BASE_URL"


class AcmeGenerator(FalGenerator):
    client_class = AcmeClient


ENTRY = {
    "id": "acme/upscale",
    "provider": "acme",
    "model": "acme/upscale",
    "kind": "image",
    "description": "An upscaler.",
    "schema_source": "https://acme.example/upscale/openapi.json",
    "schema_checked": "2026-12-03",
    "input": {"required": ["image_url"], "properties": {"image_url": {"x-artifact": "image"}}},
    "output": {"field": "image"},
    "price": {
        "source": "https://acme.example/pricing",
        "checked": "2026-12-03",
        "terms": [{"usd": 0.01, "unit": "image"}],
    },
}


def test_a_provider_registers_its_entries_with_its_credential_and_prices(tmp_path, monkeypatch):
    monkeypatch.delenv("ACME_KEY", raising=False)
    path = tmp_path / "acme.yaml"
    path.write_text(yaml.safe_dump([ENTRY]))
    registry = Registry()
    registry.add_provider(Provider("acme", AcmeGenerator, tuple(read_entries(path))), source="plugin acme")
    gen = registry.get("acme/upscale")
    assert gen.provider == "acme" and "$0.01 per image" in gen.cost_model
    assert not gen.availability().ok and "ACME_KEY" in gen.availability().fix
    with pytest.raises(ConfigurationError, match="already registered"):
        registry.add_provider(Provider("acme", AcmeGenerator, ()))


def test_user_entries_of_a_plugin_provider_load_and_unknown_providers_are_named(tmp_path):
    folder = tmp_path / "catalogue"
    folder.mkdir()
    (folder / "more.yaml").write_text(yaml.safe_dump([{**ENTRY, "id": "acme/upscale-2"}]))
    registry = Registry()
    registry.add_provider(Provider("acme", AcmeGenerator, ()))
    registry.load_catalogue(folder)
    assert registry.get("acme/upscale-2").provider == "acme"
    other = tmp_path / "other"
    other.mkdir()
    (other / "piapi.yaml").write_text(yaml.safe_dump([{**ENTRY, "id": "piapi/suno", "provider": "piapi"}]))
    with pytest.raises(ConfigurationError, match="'piapi', which is not registered") as info:
        Registry().register_builtins().load_catalogue(other)
    assert "fal" in (info.value.hint or "")


def test_a_broken_entry_is_refused_with_its_file_id_and_field(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump([{**ENTRY, "kind": "hologram"}]))
    with pytest.raises(ConfigurationError, match=r"bad.yaml: catalogue entry 'acme/upscale' is not valid \(kind"):
        read_entries(path)
    path.write_text(
        yaml.safe_dump(
            [{**ENTRY, "price": {**ENTRY["price"], "terms": [{"usd": 1, "unit": "x", "units": "__import__('os')"}]}}]
        )
    )
    with pytest.raises(ConfigurationError, match="formula"):
        read_entries(path)
