"""A step that takes a while, loaded by flow runs on workers through boardflow's plugin entry point.

`plugin_folder()` writes an entry point (a `*.dist-info` folder) naming `generators` below; a process with
that folder on PYTHONPATH registers `test/slow`, the counting Echo of tests/flows/kit.py taking
BOARDFLOW_TEST_SLOW_SECONDS seconds. Each execution appends a line to BOARDFLOW_TEST_COUNTER.
"""

from __future__ import annotations

import os
from pathlib import Path

SLOW_ENV = "BOARDFLOW_TEST_SLOW_SECONDS"


def generators(registry) -> list:
    from tests.flows.kit import Echo

    return [Echo("test/slow", work_seconds=float(os.environ.get(SLOW_ENV, "0")))]


def plugin_folder(parent: Path) -> Path:
    """A folder that, on PYTHONPATH, makes `test/slow` an installed plugin (no pip install, nothing shared)."""
    folder = parent / "slow-plugin"
    info = folder / "boardflow_test_slow-0.1.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: boardflow-test-slow\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[boardflow.generators]\nslow = tests.deployments.slow_plugin:generators\n")
    return folder


HELD_SPEC = """\
name: held
params:
  text: {type: string, required: true}
steps:
  hold:
    generator: test/slow
    inputs: {text: "${params.text}"}
"""

# The held step, then one that needs its result (so it takes its own lock after the first is done).
TWO_STEPS_SPEC = (
    HELD_SPEC.replace("name: held", "name: held-then-next")
    + """\
  next:
    generator: test/slow
    inputs: {text: "${params.text} next", source: "${steps.hold.text}"}
"""
)
