"""API keys for hosted providers: the env var first, then registered secret sources (e.g. Prefect blocks).

generators/ imports nothing from Prefect. The blocks layer calls `register_secret_source(fn)` with a
function that loads a key by block name; a user points a credential at a block by setting
`<ENV_VAR>_BLOCK` to the block's name (see MissingCredentialError's hint).

Keys are handed out as `pydantic.SecretStr`, whose repr and str hide the value, and every key handed
out is remembered so `redact()` can strip it from any text (provider bodies, messages) before that
text reaches an error, a log line or an artifact.

`Credential` lives here, not in base.py: the generator contract (base.py) asks this module whether a key
is usable, so this module must not need base.py (base.py re-exports `Credential` for its importers).
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, quote_plus

from pydantic import SecretStr

from .errors import BoardflowError, ConfigurationError, MissingCredentialError


@dataclass(frozen=True)
class Credential:
    """An API key a generator needs: the env var to read and where a person gets one."""

    env_var: str
    provider: str
    signup_url: str
    block_type: str | None = None

    def is_set(self) -> bool:
        return bool(os.environ.get(self.env_var)) or bool(os.environ.get(f"{self.env_var}_BLOCK"))


# (credential, block name or None) -> the key, or None when this source does not have it.
SecretSource = Callable[[Credential, "str | None"], "str | SecretStr | None"]

_sources: list[SecretSource] = []
_known: dict[str, frozenset[str]] = {}  # each key handed out -> the forms redact() masks
_lock = threading.Lock()
_MIN_REDACT_LEN = 6  # shorter "keys" are test placeholders; masking them would mangle ordinary words
MASK = "[redacted]"


def register_secret_source(fn: SecretSource) -> SecretSource:
    """Add a source asked (in registration order) after the env var; returns `fn`, so it works as a decorator."""
    with _lock:
        if fn not in _sources:
            _sources.append(fn)
    return fn


def unregister_secret_source(fn: SecretSource) -> None:
    with _lock:
        if fn in _sources:
            _sources.remove(fn)


def get_secret(credential: Credential) -> SecretStr:
    """The key for `credential`: $ENV_VAR, else the first secret source that has it, else a clear error."""
    value = os.environ.get(credential.env_var, "").strip()
    if value:
        return remember_secret(value)
    block = os.environ.get(f"{credential.env_var}_BLOCK", "").strip() or None
    with _lock:
        sources = list(_sources)
    for source in sources:
        found = source(credential, block)
        secret = found.get_secret_value() if isinstance(found, SecretStr) else found
        if secret and secret.strip():
            return remember_secret(secret.strip())
    if block:
        raise ConfigurationError(
            f"{credential.env_var}_BLOCK names the block {block!r}, but no secret source could load it.",
            hint=f"Check that a {credential.block_type or 'credentials'} block named {block!r} exists and that "
            f"boardflow's blocks are imported (they register the loader), or set {credential.env_var} directly.",
        )
    raise MissingCredentialError(
        credential.env_var,
        provider=credential.provider,
        signup_url=credential.signup_url,
        block_type=credential.block_type,
    )


_BLOCK_CHECK_SECONDS = 10.0
_block_checks: dict[tuple[str, str, str], tuple[float, BoardflowError | None]] = {}


def block_problem(credential: Credential) -> BoardflowError | None:
    """Why the block named by `<ENV_VAR>_BLOCK` gives no key (None when it does, or when none is named).

    For availability listings and pipeline checks: a block name that points nowhere must fail before any
    spend, not when the step runs. The answer is remembered for a few seconds per block and API, so a
    listing of thirty generators asks the API once per provider.
    """
    block = os.environ.get(f"{credential.env_var}_BLOCK", "").strip()
    if not block or os.environ.get(credential.env_var, "").strip():
        return None
    key = (credential.env_var, block, os.environ.get("PREFECT_API_URL", ""))
    now = time.monotonic()
    with _lock:
        checked = _block_checks.get(key)
    if checked and now - checked[0] < _BLOCK_CHECK_SECONDS:
        return checked[1]
    try:
        get_secret(credential)
        problem = None
    except BoardflowError as exc:
        problem = exc
    with _lock:
        _block_checks[key] = (time.monotonic(), problem)
    return problem


def redact(text: str, *secrets: str | SecretStr) -> str:
    """`text` with every key boardflow has handed out (and any `secrets` given) replaced by a mask.

    Each key is also masked URL-encoded, JSON-escaped and base64-encoded (at any of the three byte
    alignments, so `Basic base64(user:key)` is caught too).
    """
    extra = {s.get_secret_value() if isinstance(s, SecretStr) else s for s in secrets}
    with _lock:
        forms = set().union(*_known.values())
    for value in extra:
        forms |= encoded_forms(value)
    for form in sorted(forms, key=len, reverse=True):  # longest first: a key may contain a shorter one
        text = text.replace(form, MASK)
    return text


def remember_secret(value: str) -> SecretStr:
    """Wrap a key and remember it (and its encoded forms) for redact(); clients given a key call this too."""
    if len(value) >= _MIN_REDACT_LEN:
        with _lock:
            if value not in _known:
                _known[value] = encoded_forms(value)
    return SecretStr(value)


_B64_SKIP = (0, 2, 3)  # leading base64 characters that mix in the byte(s) before the key, by alignment


def encoded_forms(value: str) -> frozenset[str]:
    """How a key may appear in text: itself, URL-encoded, JSON-escaped, and its base64 at each alignment."""
    if len(value) < _MIN_REDACT_LEN:
        return frozenset()
    forms = {value}
    for quoted in (quote(value, safe=""), quote(value), quote_plus(value)):
        forms |= {quoted, re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), quoted)}
    for escaped in (json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]):
        forms |= {escaped, escaped.replace("/", "\\/"), json.dumps(escaped)[1:-1]}
    raw = value.encode()
    for offset, skip in enumerate(_B64_SKIP):
        # Only the characters that depend on key bytes alone: neither the byte before nor the byte after.
        end = (offset + len(raw)) // 3 * 4 + (offset + len(raw)) % 3
        inner = base64.b64encode(bytes(offset) + raw).decode()[skip:end]
        forms |= {inner, inner.translate(_URLSAFE)}
    return frozenset(f for f in forms if len(f) >= _MIN_REDACT_LEN)


_URLSAFE = str.maketrans("+/", "-_")
