"""Scratch folders (`boardflow-<pid>-…` in the temp dir): one per generator run, and the sweep of dead ones.

A context removes its folder when it closes; a process killed outright (SIGKILL, OOM, power cut) cannot,
so each folder carries the pid of the process that made it and the next start removes those whose
process is gone. A folder of a live process is never touched.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

PREFIX = "boardflow-"
_OWNED = re.compile(rf"{PREFIX}(\d+)-")


def new_scratch_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-"))


def remove_dead_scratch(root: Path | None = None) -> list[Path]:
    """Remove the scratch folders under `root` (the temp dir) whose process no longer exists; those removed."""
    root = Path(root or tempfile.gettempdir())
    removed = []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return removed
    for entry in entries:
        owner = _OWNED.match(entry.name)
        if owner is None or not entry.is_dir(follow_symlinks=False) or _alive(int(owner.group(1))):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(Path(entry.path))
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0 only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True
