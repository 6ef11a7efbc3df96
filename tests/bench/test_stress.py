"""``citeqa stress`` as a user runs it: the command is wired, and a load generator stays local
unless told otherwise (refusing before any traffic)."""

from __future__ import annotations

import pytest

from tests.support.cli import flat, run_cli


@pytest.mark.slow
@pytest.mark.parametrize("command, option", [("load", "--duration"), ("soak", "--minutes"), ("fuzz", "--cases")])
def test_the_cli_is_wired(tmp_path, command, option):
    help_run = run_cli(tmp_path, tmp_path, "stress", "--help")
    assert help_run.returncode == 0, help_run.stdout + help_run.stderr
    assert all(name in help_run.stdout for name in ("crash", "load", "soak", "fuzz"))
    refused = run_cli(tmp_path, tmp_path, "stress", command, "--url", "http://192.0.2.1:8000", option, "1")
    said = flat(refused.stdout)
    assert refused.returncode == 2 and "not a loopback address" in said and "--allow-remote" in said, said
