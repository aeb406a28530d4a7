"""Artifact stores: `open_store(url)` picks the backend from the URL (file:// or s3://)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from ..errors import ConfigurationError
from ..settings import get_settings
from .base import ArtifactStore, Fingerprint, StoredObject, object_key, sha256_file, sidecar_key
from .local import LocalStore

__all__ = [
    "ArtifactStore",
    "Fingerprint",
    "LocalStore",
    "StoredObject",
    "object_key",
    "open_store",
    "sha256_file",
    "sidecar_key",
]


def open_store(url: str | None = None, **s3_options) -> ArtifactStore:
    """The store at `url` (default: $BOARDFLOW_STORE, else <data dir>/store)."""
    url = url or get_settings().store_url
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        return LocalStore(Path(unquote(parsed.path if parsed.scheme else url)))
    if parsed.scheme == "s3":
        from .s3 import S3Store

        if not parsed.netloc:
            raise ConfigurationError(f"Store URL {url!r} names no bucket.", hint="Use s3://BUCKET/optional/prefix.")
        options = {"endpoint_url": get_settings().s3_endpoint_url, **s3_options}
        return S3Store(bucket=parsed.netloc, prefix=parsed.path.strip("/"), **options)
    raise ConfigurationError(
        f"Unsupported artifact store URL {url!r}.",
        hint="Use a local path, file:///path, or s3://bucket/prefix (set BOARDFLOW_STORE).",
    )
