"""A throwaway PostgreSQL on 127.0.0.1 from the machine's own binaries, for tests and benches (`LocalPostgres`).

Debian's `postgresql` package puts its programs in /usr/lib/postgresql/<version>/bin. The server
refuses to run as root, so as root every program runs as the `postgres` user (through runuser).
Connections over TCP need the password (scram-sha-256); the socket in the folder is trusted.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from generators.errors import ConfigurationError

from .local_server import free_port

USER, PASSWORD = "boardflow", "pg-test-secret"


def postgres_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


class LocalPostgres:
    """`with LocalPostgres() as pg:` starts a new cluster with a `prefect` database; `pg.url` connects to it."""

    def __init__(self, database: str = "prefect") -> None:
        bindir = postgres_bindir()
        if bindir is None:
            raise ConfigurationError("PostgreSQL is not installed.", hint="apt-get install postgresql")
        self.bindir = bindir
        self.database = database
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user and shutil.which("runuser") is None:
            raise ConfigurationError("As root, PostgreSQL needs runuser to run as the postgres user.")
        self.folder = Path(tempfile.mkdtemp(prefix="bf-pg-"))
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{self.database}"

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True)

    def start(self) -> LocalPostgres:
        pwfile, data = self.folder / "pw", self.folder / "data"
        pwfile.write_text(PASSWORD + "\n")
        if self.as_user:
            shutil.chown(self.folder, "postgres")
            shutil.chown(pwfile, "postgres")
        self._run(str(self.bindir / "initdb"), "-D", str(data), "-U", USER, f"--pwfile={pwfile}",
                  "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync")  # fmt: skip
        self._launch()
        self._run(str(self.bindir / "createdb"), "-h", str(self.folder), "-p", str(self.port), "-U", USER,
                  self.database)  # fmt: skip
        return self

    def _launch(self) -> None:
        self.proc = subprocess.Popen(
            [*self.as_user, str(self.bindir / "postgres"), "-D", str(self.folder / "data"), "-p", str(self.port),
             "-k", str(self.folder), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        ready = [str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)]
        deadline = time.monotonic() + 60
        while subprocess.run(ready, capture_output=True).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("PostgreSQL did not start")
            time.sleep(0.1)

    def halt(self) -> None:
        """Stop the server but keep its data, as an outage would; `resume()` starts it again on the same port."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # "smart" shutdown would wait for clients; SIGTERM is PostgreSQL's "fast"
            self.proc.wait(30)

    def resume(self) -> None:
        self._launch()

    def stop(self) -> None:
        self.halt()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
