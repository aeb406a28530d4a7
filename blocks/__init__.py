"""Prefect blocks for boardflow: provider API keys (SecretStr) and the artifact store; generators load keys from them.

Importing this package is cheap — it does not import Prefect (`import flows` runs it on every `boardflow`
command). It registers a secret source, so a generator whose key env var is unset loads the key from the
block named by `<ENV_VAR>_BLOCK` (e.g. FAL_KEY_BLOCK=prod-fal). The block classes are imported on first use
(PEP 562 module `__getattr__`/`__dir__`), which `prefect block register -m blocks` still finds.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from generators.credentials import Credential, register_secret_source

if TYPE_CHECKING:  # the real types for checkers; at run time these load on first use (__getattr__ below)
    from .credentials import (
        ElevenLabsCredentials,
        FalCredentials,
        KieCredentials,
        OpenAICredentials,
        ReplicateCredentials,
    )
    from .storage import ArtifactStoreBlock

_CLASSES = {
    "FalCredentials": "blocks.credentials",
    "ReplicateCredentials": "blocks.credentials",
    "OpenAICredentials": "blocks.credentials",
    "ElevenLabsCredentials": "blocks.credentials",
    "KieCredentials": "blocks.credentials",
    "ArtifactStoreBlock": "blocks.storage",
}
__all__ = [  # spelled out, not built from _CLASSES, so type checkers can read it
    "ArtifactStoreBlock",
    "ElevenLabsCredentials",
    "FalCredentials",
    "KieCredentials",
    "OpenAICredentials",
    "ReplicateCredentials",
    "block_classes",
    "register_block_types",
]


def __getattr__(name: str) -> Any:
    if name in _CLASSES:
        return getattr(importlib.import_module(_CLASSES[name]), name)
    raise AttributeError(f"module 'blocks' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_CLASSES})


def block_classes() -> list[type]:
    """Every block type boardflow defines, in a stable order."""
    return [__getattr__(name) for name in _CLASSES]


async def register_block_types() -> list[str]:
    """Register every block type (and the nested AwsCredentials) with the Prefect API; returns their names."""
    names = []
    for cls in block_classes():
        await cls.aregister_type_and_schema()
        names.append(cls.get_block_type_name())
    return names


def _key_from_block(credential: Credential, block_name: str | None) -> SecretStr | None:
    if block_name is None:
        return None
    from .credentials import load_api_key

    return load_api_key(credential, block_name)


register_secret_source(_key_from_block)
