"""The harness waits for its own server, not for whatever answers on the port."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from harness.ports import stop_process, wait_for_port


def test_a_port_held_by_another_process_is_not_taken_for_ours():
    with socket.socket() as other_server:
        other_server.bind(("127.0.0.1", 0))
        other_server.listen()
        port = other_server.getsockname()[1]
        ours = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        try:
            with pytest.raises(TimeoutError, match="did not listen"):
                wait_for_port("127.0.0.1", port, ours, timeout=0.5)
        finally:
            stop_process(ours)


def test_our_own_listener_is_found():
    server = subprocess.Popen([sys.executable, "-c", "import socket, time\n"
                               "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); print(s.getsockname()[1], flush=True)\n"
                               "time.sleep(30)"], stdout=subprocess.PIPE)
    try:
        port = int(server.stdout.readline())
        wait_for_port("127.0.0.1", port, server, timeout=5)
    finally:
        stop_process(server)
