"""A fleet on loopback: the stack (gunicorn and the origin nginx), edges in front of it, and a
sync agent beside every nginx that keeps its keys in step with the app (docs/fleet.md).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from signing.fleet.protocol import FLEET_TOKEN_FILE_NAME

from .nginx import NginxServer, start_edge, start_key_sync
from .ports import stop_process
from .stack import Stack, running_stack


def download_logs_setting(var_dir: Path, edge_names: Sequence[str]) -> str:
    """``SECURE_LINK_DOWNLOAD_LOGS`` for a fleet laid out in ``var_dir``: each nginx's downloads.log."""
    runs = {"origin": var_dir / "nginx", **{name: var_dir / name for name in edge_names}}
    return ",".join(f"{name}={run_dir / 'downloads.log'}" for name, run_dir in runs.items())


@dataclass
class Fleet:
    """The stack, its edges by name, and each nginx's sync agent (``"origin"`` for the origin's)."""

    stack: Stack
    edges: dict[str, NginxServer]
    agents: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def verifiers(self) -> dict[str, NginxServer]:
        return {"origin": self.stack.nginx, **self.edges}

    @property
    def verifiers_setting(self) -> str:
        """The value of ``SECURE_LINK_VERIFIERS`` for this fleet."""
        return ",".join(f"{name}={server.base_url}" for name, server in self.verifiers.items())

    def stop(self) -> None:
        for agent in self.agents.values():
            stop_process(agent)
        for edge in self.edges.values():
            edge.stop()
        self.stack.stop()


def start_fleet(
    stack: Stack,
    *,
    edges: dict[str, str],
    edge_ports: Sequence[int | None] = (),
    interval: float = 1.0,
    access_log: bool = False,
) -> Fleet:
    """Start an edge per ``name -> address it connects from`` in front of ``stack``, and the agents.

    The origin must trust those addresses (``start_stack(edges=...)``). On failure everything
    started here and the stack are stopped.
    """
    fleet = Fleet(stack, {})
    try:
        for index, (name, address) in enumerate(edges.items()):
            port = edge_ports[index] if index < len(edge_ports) else None
            fleet.edges[name] = start_edge(stack.var_dir / name, origin_address=f"127.0.0.1:{stack.nginx.port}",
                                           key_set=stack.key_set(), bind_address=address, port=port,
                                           access_log=access_log)
        for name, server in fleet.verifiers.items():
            fleet.agents[name] = start_key_sync(server, source=stack.base_url,
                                                token_file=stack.var_dir / FLEET_TOKEN_FILE_NAME, interval=interval,
                                                revocations=name != "origin")
    except BaseException:
        fleet.stop()
        raise
    stack.env["SECURE_LINK_VERIFIERS"] = fleet.verifiers_setting  # for the commands run with stack.env
    return fleet


@contextmanager
def running_fleet(var_dir: Path, *, edges: dict[str, str], environment: dict[str, str] | None = None,
                  interval: float = 1.0, access_log: bool = False, database_url: str | None = None,
                  nginx_workers: int = 1) -> Iterator[Fleet]:
    """``running_stack``, with the edges and the agents; all stopped by pid on exit.

    ``nginx_workers`` is the origin nginx's worker count (edges run one).
    """
    environment = {"SECURE_LINK_DOWNLOAD_LOGS": download_logs_setting(var_dir, list(edges)), **(environment or {})}
    with running_stack(var_dir, environment=environment, edges=tuple(edges.values()), access_log=access_log,
                       database_url=database_url, nginx_workers=nginx_workers) as stack:
        fleet = start_fleet(stack, edges=edges, interval=interval, access_log=access_log)
        try:
            yield fleet
        finally:
            fleet.stop()
