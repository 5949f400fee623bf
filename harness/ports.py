"""Free loopback ports, waiting for a server to accept connections, and stopping processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path


def free_port(host: str = "127.0.0.1", *, avoid: tuple[int, ...] = ()) -> int:
    """A TCP port that was free on ``host`` a moment ago, and is none of ``avoid`` (ports promised elsewhere)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    while True:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((host, 0))
            port = int(probe.getsockname()[1])
        if port not in avoid:
            return port


def wait_for_port(host: str, port: int, process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """Return once ``process`` itself listens on ``port``; raise if it exits or time runs out.

    Accepting a connection is not enough: another server that took the port first would
    answer in its place (two free ports picked apart can turn out to be the same one).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with status {process.returncode}")
        if _listening_inodes(port) & _socket_inodes(process.pid):
            return
        time.sleep(0.05)
    raise TimeoutError(f"{process.args!r} did not listen on {host}:{port} within {timeout} s")


def _listening_inodes(port: int) -> set[str]:
    """Inodes of the TCP sockets (IPv4 and IPv6) listening on ``port``, from /proc/net."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]  # noqa: SIM115 - a tiny read
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(fields[9])
    return inodes


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        for descriptor in os.listdir(f"/proc/{pid}/fd"):
            target = os.readlink(f"/proc/{pid}/fd/{descriptor}")
            if target.startswith("socket:["):
                inodes.add(target[len("socket:["):-1])
    except OSError:  # the process is gone, or a descriptor closed while we looked
        pass
    return inodes


def child_pids(pid: int) -> list[int]:
    """The processes ``pid`` started, as /proc lists them now (none once it has gone)."""
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Stop ``process`` by its own pid: SIGTERM, then SIGKILL if it lingers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)


def interrupt_process(process: subprocess.Popen[str] | subprocess.Popen[bytes], timeout: float) -> None:
    """Ctrl-C ``process`` (SIGINT) and wait ``timeout`` s for it to stop by itself; if it does not, stop it
    by its pid all the same (SIGTERM, then SIGKILL) and raise ``subprocess.TimeoutExpired``: nothing lingers."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_process(process)  # type: ignore[arg-type]
        raise


def stop_like_ctrl_c_on_sigterm() -> None:
    """Make SIGTERM raise KeyboardInterrupt, so that ``finally`` blocks stop what was started."""
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
