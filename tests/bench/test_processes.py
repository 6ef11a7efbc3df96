"""Servers as processes: a free port, and waiting for a process to answer (or saying why it
never will, with the end of its log)."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from citeqa.bench.processes import ServerFailed, free_port, stop, tail, wait_until_ready

# A server that answers 200 to any GET, on the port given as its argument.
OK_SERVER = """
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

class Ok(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass

HTTPServer(("127.0.0.1", int(sys.argv[1])), Ok).serve_forever()
"""


def test_a_free_port_can_be_bound():
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_waits_until_the_server_answers(tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", OK_SERVER, str(port)])
    try:
        took = wait_until_ready(proc, f"http://127.0.0.1:{port}/readyz", timeout_s=30, what="test server")
        assert took >= 0
    finally:
        assert stop(proc, timeout_s=10) is not None
    assert proc.poll() is not None


def test_a_server_that_exits_is_reported_with_its_log(tmp_path):
    log = tmp_path / "server.log"
    log.write_text("".join(f"line {n}\n" for n in range(50)) + "fatal: no model\n")
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(3)"])
    with pytest.raises(ServerFailed, match="exited with 3") as failed:
        wait_until_ready(proc, f"http://127.0.0.1:{free_port()}/readyz", timeout_s=30, log_path=log)
    assert str(failed.value).endswith("fatal: no model") and "line 19\n" not in str(failed.value)
    assert tail(log, 2) == "line 49\nfatal: no model" and tail(tmp_path / "absent.log") == ""


def test_a_server_that_never_answers_times_out():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with pytest.raises(ServerFailed, match="not ready after 0.5 s"):
            wait_until_ready(proc, f"http://127.0.0.1:{free_port()}/readyz", timeout_s=0.5, poll_s=0.05)
    finally:
        stop(proc, timeout_s=5)
