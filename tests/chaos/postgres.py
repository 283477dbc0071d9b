"""A PostgreSQL server of the scenario's own, to restart mid-campaign.

The machine's shared server is never stopped (other tests use it, in this run and
others): the scenario initialises a throw-away cluster from the same binaries on a free
port, migrates it, and points this process and its workers at it for its duration.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connections

DATABASE = "smsadmin"


def _binaries() -> Path:
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda path: int(path.parts[4])
    )
    if not found:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql")
    return found[-1].parent


class PrivatePostgres:
    """``initdb`` + ``pg_ctl`` on a free port; ``restart`` stops it as a crash would."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.bin = _binaries()
        # Not under pytest's tmp_path: as root the server runs as ``postgres``, which
        # may not enter root's private temporary folders.
        self.folder = Path(tempfile.mkdtemp(prefix="smsadmin-chaos-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def _run(self, *command: str, check: bool = True) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *command], check=check, capture_output=True, timeout=60)  # noqa: S603

    def _pg_ctl(self, *arguments: str, check: bool = True) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), *arguments, check=check)

    def __enter__(self) -> PrivatePostgres:
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run(
            str(self.bin / "initdb"),
            "-D", str(self.data), "-U", "postgres", "-A", "trust",
            "-E", "UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        self.start()
        with psycopg.connect(self._admin_url(), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{DATABASE}"')
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._pg_ctl("-m", "immediate", "stop", check=False)
        shutil.rmtree(self.folder, ignore_errors=True)

    def _admin_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        self._pg_ctl("-l", str(self.log), "-o", options, "-w", "-t", "60", "start")

    def restart(self, *, down_seconds: float) -> None:
        """Stop at once (``immediate``: no checkpoint, clients cut, as a crash or a
        killed container), stay down, start again (with crash recovery)."""
        self._pg_ctl("-m", "immediate", "stop")
        time.sleep(down_seconds)
        self.start()


@contextlib.contextmanager
def pointed_at_database(server: PrivatePostgres) -> Iterator[dict[str, str]]:
    """This process (every thread's new connections) uses the private server, migrated;
    yields the environment for workers. The test database is back afterwards."""
    settings_dict = connections["default"].settings_dict  # shared by every thread
    previous = dict(settings_dict)
    connections.close_all()
    settings_dict.update(
        NAME=DATABASE, HOST="127.0.0.1", PORT=str(server.port), USER="postgres", PASSWORD=""
    )
    ContentType.objects.clear_cache()
    try:
        call_command("migrate", verbosity=0, interactive=False)
        yield {"DATABASE_URL": server.url}
    finally:
        connections.close_all()
        settings_dict.clear()
        settings_dict.update(previous)
        ContentType.objects.clear_cache()
