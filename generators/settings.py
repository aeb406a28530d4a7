"""Where boardflow keeps its data and what it may fetch, read from the environment each time."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    store_url: str
    s3_endpoint_url: str | None
    max_download_bytes: int
    allowed_hosts: tuple[str, ...]
    allowed_s3: tuple[str, ...]  # "bucket" or "bucket/prefix" inputs may come from, besides the store
    allowed_folders: tuple[Path, ...]  # folders file:// inputs may come from, besides the store
    config_file: Path
    catalogue_dir: Path  # user catalogue entries (`boardflow generators import` writes there)


def get_settings() -> Settings:
    """Settings from BOARDFLOW_* variables; defaults keep everything under ./.boardflow."""
    data_dir = Path(os.environ.get("BOARDFLOW_DATA_DIR", ".boardflow")).resolve()
    store = os.environ.get("BOARDFLOW_STORE") or (data_dir / "store").as_uri()
    hosts = tuple(h.strip().lower() for h in os.environ.get("BOARDFLOW_ALLOWED_HOSTS", "").split(",") if h.strip())
    s3 = tuple(e.strip().strip("/") for e in os.environ.get("BOARDFLOW_ALLOWED_S3", "").split(",") if e.strip())
    folders = os.environ.get("BOARDFLOW_ALLOWED_FOLDERS", "").split(os.pathsep)
    return Settings(
        data_dir=data_dir,
        store_url=store,
        s3_endpoint_url=os.environ.get("BOARDFLOW_S3_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL_S3"),
        max_download_bytes=int(float(os.environ.get("BOARDFLOW_MAX_DOWNLOAD_MB", "2048")) * 1024 * 1024),
        allowed_hosts=hosts,
        allowed_s3=s3,
        allowed_folders=tuple(Path(f.strip()).resolve() for f in folders if f.strip()),
        config_file=Path(os.environ.get("BOARDFLOW_CONFIG", "boardflow.toml")),
        catalogue_dir=Path(os.environ.get("BOARDFLOW_CATALOGUE_DIR") or data_dir / "catalogue").resolve(),
    )
