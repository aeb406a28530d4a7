"""Named parameter sets for the deployments in prefect.yaml: JSON files beside this module.

Use one from the shell with `prefect deployment run storyboard/storyboard --params - < deployments/params/NAME.json`,
or from Python with `load_params(NAME)`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from generators.errors import ConfigurationError

HERE = Path(__file__).resolve().parent


def load_params(name: str) -> dict[str, Any]:
    """The parameter set `name` (a file name here without .json) as a dict for a flow or run_deployment."""
    path = HERE / f"{name}.json"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in HERE.glob("*.json")))
        raise ConfigurationError(f"No parameter set {name!r} in {HERE}.", hint=f"Choose from: {known}.")
    return json.loads(path.read_text(encoding="utf-8"))
