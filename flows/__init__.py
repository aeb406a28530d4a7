"""The Prefect layer: generator tasks, pipelines, flows and the `boardflow` command.

Importing this package sets offline-safe Prefect defaults (no analytics, results under the project's
data folder, a patient ephemeral-server start) unless the environment already says otherwise.
"""

from __future__ import annotations

import os

from generators.settings import get_settings

_settings = get_settings()
for _name, _value in {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(_settings.data_dir / "prefect-results"),
}.items():
    os.environ.setdefault(_name, _value)

# Lets generators load API keys from Prefect blocks (<ENV_VAR>_BLOCK=name); cheap: Prefect is imported on use.
import blocks  # noqa: E402, F401
