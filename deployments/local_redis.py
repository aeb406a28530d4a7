"""A throwaway Redis on 127.0.0.1 from the machine's own `redis-server`, for tests and benches (`LocalRedis`).

It keeps nothing on disk (no snapshots, no append-only file). `stop()` and a later `start()` bring it
back empty on the same port, which is how a test takes the lock store down mid-run and restores it.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from generators.errors import ConfigurationError

from .local_server import free_port


def redis_executable() -> str | None:
    return shutil.which("redis-server")


class LocalRedis:
    """`with LocalRedis() as r:` starts redis-server on a free loopback port; `r.url` is its database 0."""

    def __init__(self) -> None:
        exe = redis_executable()
        if exe is None:
            raise ConfigurationError("redis-server is not installed.", hint="apt-get install redis-server")
        self.exe = exe
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="bf-redis-"))
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> LocalRedis:
        import redis

        args = [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(self.folder)]  # fmt: skip
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        client = redis.Redis(host="127.0.0.1", port=self.port)
        deadline = time.monotonic() + 30
        while True:
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.proc.kill()
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.05)
            finally:
                client.close()

    def stop(self) -> None:
        """Stop the server (its port is free again, its data gone); `start()` brings it back on the same port."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def __enter__(self) -> LocalRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
