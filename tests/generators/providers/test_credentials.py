"""Key lookup (env var, then secret sources by block name) and redaction."""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import quote, quote_plus

import pytest

from generators.base import Credential
from generators.credentials import (
    get_secret,
    redact,
    register_secret_source,
    remember_secret,
    unregister_secret_source,
)
from generators.errors import ConfigurationError, MissingCredentialError

CRED = Credential("ACME_API_KEY", "acme", "https://acme.example/keys", "acme-credentials")


@pytest.fixture
def blocks():
    """A stand-in for the Prefect-blocks layer: keys by block name."""
    saved = {"acme-prod": "acme-key-from-block-771"}
    calls: list[tuple[str, str | None]] = []

    def source(credential: Credential, block: str | None) -> str | None:
        calls.append((credential.env_var, block))
        return saved.get(block) if block else None

    register_secret_source(source)
    yield calls
    unregister_secret_source(source)


def test_env_var_comes_first(monkeypatch, blocks):
    monkeypatch.setenv("ACME_API_KEY", "acme-key-from-env-123")
    monkeypatch.setenv("ACME_API_KEY_BLOCK", "acme-prod")
    assert get_secret(CRED).get_secret_value() == "acme-key-from-env-123"
    assert blocks == []  # the env var answered; no block was loaded


def test_a_block_named_by_env_is_loaded_through_the_registered_source(monkeypatch, blocks):
    monkeypatch.delenv("ACME_API_KEY", raising=False)
    monkeypatch.setenv("ACME_API_KEY_BLOCK", "acme-prod")
    secret = get_secret(CRED)
    assert secret.get_secret_value() == "acme-key-from-block-771"
    assert "acme-key" not in repr(secret) and "acme-key" not in str(secret)
    assert blocks == [("ACME_API_KEY", "acme-prod")]


def test_missing_key_says_which_env_var_and_block_to_set(monkeypatch):
    monkeypatch.delenv("ACME_API_KEY", raising=False)
    monkeypatch.delenv("ACME_API_KEY_BLOCK", raising=False)
    with pytest.raises(MissingCredentialError) as info:
        get_secret(CRED)
    message = str(info.value)
    assert "ACME_API_KEY" in message and "acme-credentials" in message and "https://acme.example/keys" in message


def test_a_block_no_source_can_load_is_a_configuration_error_naming_it(monkeypatch, blocks):
    monkeypatch.delenv("ACME_API_KEY", raising=False)
    monkeypatch.setenv("ACME_API_KEY_BLOCK", "acme-staging")
    with pytest.raises(ConfigurationError, match="acme-staging"):
        get_secret(CRED)


def test_redact_masks_every_key_handed_out(monkeypatch):
    monkeypatch.setenv("ACME_API_KEY", "acme-secret-value-9f8e")
    get_secret(CRED)
    text = "request failed: Invalid key acme-secret-value-9f8e (see docs)"
    assert redact(text) == "request failed: Invalid key [redacted] (see docs)"
    assert redact("token=abcdef123456", "abcdef123456") == "token=[redacted]"


CANARY = 'sk-canary/7f+e=9"q\\é-long-key'


def _lower_hex(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), text)


def _encoded_forms() -> dict[str, str]:
    raw = CANARY.encode()
    return {
        "url-encoded": quote(CANARY, safe=""),
        "form-encoded": quote_plus(CANARY),
        "url-encoded, lower-case hex": _lower_hex(quote(CANARY, safe="")),
        "JSON-escaped": json.dumps(CANARY)[1:-1],
        "JSON-escaped, non-ASCII kept": json.dumps(CANARY, ensure_ascii=False)[1:-1],
        "JSON inside a JSON string": json.dumps(json.dumps(CANARY))[1:-1],
        "base64": base64.b64encode(raw).decode(),
        "base64url": base64.urlsafe_b64encode(raw).decode().rstrip("="),
        "basic auth user:key": base64.b64encode(b"user:" + raw).decode(),
        "base64 after one byte": base64.b64encode(b"x" + raw).decode(),
        "base64 after two bytes": base64.b64encode(b"xy" + raw + b"tail").decode(),
    }


@pytest.mark.parametrize("form", list(_encoded_forms()))
def test_redact_masks_the_encoded_forms_of_a_key(form):
    remember_secret(CANARY)
    encoded = _encoded_forms()[form]
    text = redact(f"request to https://api.example/x?token={encoded}&n=1 failed: {{'auth': '{encoded}'}}")
    assert "[redacted]" in text and CANARY not in text
    # No run of 12 encoded characters survives: what is left is the encoded neighbours ("user:", "tail").
    assert not any(encoded[i : i + 12] in text for i in range(len(encoded) - 12)), text
