"""The generators that ship with boardflow, in one list."""

from __future__ import annotations

from .base import BaseGenerator


def generators() -> list[BaseGenerator]:
    from .local import LOCAL_GENERATORS

    gens: list[BaseGenerator] = [cls() for cls in LOCAL_GENERATORS]
    from .hosted import HOSTED_GENERATORS

    gens.extend(HOSTED_GENERATORS)
    return gens
