"""What a measurement ran on: the machine, how busy it was, and the versions of what ran.
Recorded beside every bench result, since figures from a shared 2-core machine mean
little without them."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

# The source checkout this package runs from (an editable install; bench/ sits at its top).
CHECKOUT = Path(__file__).resolve().parents[1]
BENCH_PACKAGES = ("citeqa", "torch", "faiss-cpu", "sentence-transformers", "transformers", "numpy", "fastapi",
                  "uvicorn", "httpx")


def machine() -> dict[str, Any]:
    """CPUs, platform, load average now, and how OpenMP and the tokenizers were set."""
    found: dict[str, Any] = {
        "cpu_count": os.cpu_count(), "platform": platform.platform(), "processor": platform.processor() or None,
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        # OpenMP's spin-waiting decides a lot on a busy 2-core machine: record how it was set.
        "thread_env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT",
                                                       "MKL_NUM_THREADS", "TOKENIZERS_PARALLELISM")},
    }
    if hasattr(os, "sched_getaffinity"):
        found["cpus_usable"] = len(os.sched_getaffinity(0))
    try:
        import torch

        found["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return found


def installed_versions(names: Iterable[str], missing: str | None = None) -> dict[str, str | None]:
    """The installed version of each distribution, ``missing`` for one that is not installed."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = missing
    return versions


def versions() -> dict[str, Any]:
    """Python, the commit benched, and the versions of the packages that decide the figures."""
    return {"python": platform.python_version(), **git_state(), **installed_versions(BENCH_PACKAGES)}


def git_state() -> dict[str, Any]:
    """The commit benched, and whether the work tree had uncommitted changes ({} outside a checkout)."""
    try:
        head = subprocess.run(["git", "-C", str(CHECKOUT), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10)
        status = subprocess.run(["git", "-C", str(CHECKOUT), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return {}
    if head.returncode != 0:
        return {}
    return {"git_commit": head.stdout.strip(), "git_dirty": bool(status.stdout.strip())}
