"""A hosted provider shipped by a package: a fal-compatible queue at another host, with one model entry."""

from __future__ import annotations

from generators.catalogue import Provider
from generators.catalogue.entry import parse_entry
from generators.credentials import Credential
from generators.hosted.fal import FalGenerator
from generators.providers.fal import FalClient
from generators.providers.http import ProviderInfo


class AcmeClient(FalClient):
    info = ProviderInfo(
        name="acme",
        credential=Credential("ACME_KEY", "acme", "https://acme.example/keys"),
        billing_url="https://acme.example/billing",
    )
    default_base_url = "https://queue.acme.example"
    base_url_env = "ACME_BASE_URL"


class AcmeGenerator(FalGenerator):
    client_class = AcmeClient


UPSCALE = {
    "id": "acme/upscale",
    "provider": "acme",
    "model": "acme/upscale",
    "kind": "image",
    "description": "Acme's upscaler.",
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

PROVIDER = Provider("acme", AcmeGenerator, (parse_entry(UPSCALE, __name__),))
