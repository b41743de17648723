"""A Redis server and a PostgreSQL cluster of a test's own, on free ports, that the test may
stop and start again as an outage would: the shared services stay untouched."""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import redis

START_SECONDS = 30
POSTGRES_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait(ready: object, what: str, log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if ready():  # type: ignore[operator]
                return
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    raise RuntimeError(f"{what} did not answer within {START_SECONDS} s:\n{tail}")


class OwnRedis:
    """`redis-server` on a free port, with or without an append-only file in `folder`."""

    def __init__(self, folder: Path, *, append_only: bool) -> None:
        self.folder = folder
        self.append_only = append_only
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log = folder / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        command = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port)]
        command += ["--dir", str(self.folder), "--save", "", "--logfile", str(self.log)]
        command += ["--appendonly", "yes" if self.append_only else "no"]
        self.process = subprocess.Popen(command, start_new_session=True)
        client = redis.Redis.from_url(self.url, socket_timeout=1)
        _wait(client.ping, f"redis-server on port {self.port}", self.log)
        client.close()

    def kill(self) -> None:
        """SIGKILL, as a crashed or lost machine: only what the append-only file holds survives."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        self.kill()


class OwnPostgres:
    """A PostgreSQL cluster made with `initdb` in a folder of its own under the temporary
    directory (owned by the `postgres` user, as the server refuses to run as root, and outside
    pytest's folders, which that user cannot enter), listening on a free port, with one
    database `actionforge`."""

    def __init__(self) -> None:
        if not POSTGRES_BIN:
            raise RuntimeError("no PostgreSQL server under /usr/lib/postgresql")
        self.bin = POSTGRES_BIN[-1]
        self.folder = Path(tempfile.mkdtemp(prefix="actionforge-postgres-"))
        self.data = self.folder / "data"
        self.log = self.folder / "postgres.log"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/actionforge"

    def _as_postgres(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if _is_root() else []
        subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=120)

    def create(self) -> None:
        if _is_root():
            shutil.chown(self.folder, "postgres", "postgres")
        self._as_postgres(
            str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"
        )
        self.start()
        with psycopg.connect(self._dsn("postgres"), autocommit=True) as admin:
            admin.execute("CREATE DATABASE actionforge")

    def _dsn(self, database: str) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        self._as_postgres(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options,
            "start",
        )  # fmt: skip
        _wait(lambda: psycopg.connect(self._dsn("postgres")).close() is None, "postgres", self.log)

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server; `immediate` aborts every connection at once, as a crash would."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "stop")

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def _is_root() -> bool:
    import os

    return os.geteuid() == 0
