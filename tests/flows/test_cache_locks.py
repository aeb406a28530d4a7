"""The cache lock: held while its process lives, broken once that process is gone (a SIGKILLed run)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from flows.engine.locks import FileLockManager

REPO = Path(__file__).resolve().parents[2]
HOLD = """
import os, sys
from pathlib import Path
from flows.engine.locks import FileLockManager
assert FileLockManager(Path(sys.argv[1])).acquire_lock("step-key", "killed-run")
print("held", flush=True)
sys.stdin.read()  # hold it until the test closes our stdin
os._exit(0)  # leave without releasing, as a SIGKILLed process would
"""


async def test_a_lock_outlives_its_holder_only_while_the_holder_lives(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        manager = FileLockManager(tmp_path)
        assert manager.is_locked("step-key")
        assert not await manager.aacquire_lock("step-key", "next-run", acquire_timeout=0.3)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert (tmp_path / "step-key.lock").exists(), "the dead holder never released it"
    assert await manager.aacquire_lock("step-key", "next-run", acquire_timeout=5)
    assert manager.is_lock_holder("step-key", "next-run")
    manager.release_lock("step-key", "next-run")
    assert not (tmp_path / "step-key.lock").exists()
