"""A fleet on loopback: the stack (gunicorn and the origin nginx), edges in front of it, and a
sync agent beside every nginx that keeps its keys in step with the app (docs/fleet.md).
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from signing import KeySet
from signing.fleet.protocol import FLEET_TOKEN_FILE_NAME
from signing.keys import KEYS_FILE_NAME

from .nginx import NginxServer, start_edge, start_key_sync, start_nginx
from .ports import free_port, stop_process
from .seaweedfs import SeaweedFS
from .stack import Stack, app_counter, django_environment, prepare, running_stack, start_gunicorn


def cluster_download_logs(var_dir: Path, origins: int) -> str:
    """``SECURE_LINK_DOWNLOAD_LOGS`` for a cluster laid out in ``var_dir``: origin-1..N and the edge."""
    names = [*(f"origin-{index}" for index in range(1, origins + 1)), "edge"]
    return ",".join(f"{name}={var_dir / name / 'downloads.log'}" for name in names)


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
                                                token_file=stack.var_dir / FLEET_TOKEN_FILE_NAME, interval=interval)
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


CLUSTER_EDGE_ADDRESS = "127.0.0.61"  # the cluster's edge connects to the origins from here


@dataclass
class Cluster:
    """Any number of origin nginx and app servers with nothing shared between them but the
    database, the bucket and HTTP (docs/scaling.md): every origin balances across every app
    server and asks them to count limited downloads, the edge balances across every origin,
    and a sync agent beside each nginx keeps its keys and revocations. On one machine the app
    servers share one var folder for the keys file and the fleet token (configuration)."""

    var_dir: Path
    env: dict[str, str]
    app_ports: list[int]
    apps: list[subprocess.Popen[bytes]]
    origins: list[NginxServer] = field(default_factory=list)
    edge: NginxServer | None = None
    agents: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def verifiers(self) -> dict[str, NginxServer]:
        named = {f"origin-{index}": origin for index, origin in enumerate(self.origins, 1)}
        return {**named, "edge": self.edge} if self.edge is not None else named

    @property
    def verifiers_setting(self) -> str:
        return ",".join(f"{name}={server.base_url}" for name, server in self.verifiers.items())

    def app_url(self, index: int = 0) -> str:
        return f"http://127.0.0.1:{self.app_ports[index]}"

    def key_set(self) -> KeySet:
        return KeySet.from_file(self.var_dir / KEYS_FILE_NAME)

    def kill_origin(self, index: int) -> None:
        """``kill -9`` the origin's master and its workers at once (its process group)."""
        process = self.origins[index].process
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=10)

    def stop(self) -> None:
        for agent in self.agents.values():
            stop_process(agent)
        for server in self.verifiers.values():
            server.stop()
        for app in self.apps:
            stop_process(app)


def start_cluster(var_dir: Path, env: dict[str, str], *, storage: SeaweedFS, origins: int = 2, apps: int = 2,
                  ports: Sequence[int | None] = (), edge_port: int | None = None, interval: float = 1.0,
                  access_log: bool = True, edge_address: str = CLUSTER_EDGE_ADDRESS) -> Cluster:
    """Start ``apps`` gunicorn, ``origins`` origin nginx fetching from ``storage``'s bucket, an edge
    in front of them and an agent beside each nginx; ``prepare()`` must have run with ``env``.

    ``ports`` are the origins' ports (free ones when not given). On failure everything started
    here is stopped.
    """
    reserved = tuple(port for port in (*ports, edge_port) if port)
    app_ports: list[int] = []
    for _ in range(apps):
        app_ports.append(free_port(avoid=(*reserved, *app_ports)))
    cluster = Cluster(var_dir, env, app_ports, [])
    try:
        for index, port in enumerate(app_ports, 1):
            cluster.apps.append(start_gunicorn(env, port, log=var_dir / f"gunicorn-{index}.log"))
        counter = app_counter(var_dir, app_ports)
        key_set = cluster.key_set()
        for index in range(origins):
            cluster.origins.append(start_nginx(
                var_dir / f"origin-{index + 1}", media_root=var_dir / "media", key_set=key_set,
                app_address=[f"127.0.0.1:{port}" for port in app_ports], counter=counter,
                port=ports[index] if index < len(ports) else None, edges=(edge_address,), access_log=access_log,
                bucket=storage.bucket("origin"),
            ))
        cluster.edge = start_edge(var_dir / "edge", origin_address=[f"127.0.0.1:{origin.port}" for origin in cluster.origins],
                                  key_set=key_set, bind_address=edge_address, port=edge_port, access_log=access_log)
        token_file = var_dir / FLEET_TOKEN_FILE_NAME
        for index, (name, server) in enumerate(cluster.verifiers.items()):
            # Each origin's agent asks the app through its own origin; the edge's through the first.
            source = cluster.origins[index if index < len(cluster.origins) else 0].base_url
            cluster.agents[name] = start_key_sync(server, source=source, token_file=token_file, interval=interval)
    except BaseException:
        cluster.stop()
        raise
    env["SECURE_LINK_VERIFIERS"] = cluster.verifiers_setting
    return cluster


@contextmanager
def running_cluster(var_dir: Path, *, storage: SeaweedFS, database_url: str | None, origins: int = 2, apps: int = 2,
                    interval: float = 1.0) -> Iterator[Cluster]:
    """``start_cluster`` on a prepared ``var_dir`` (the files in ``storage``'s bucket), stopped by pid on exit."""
    app_bucket = storage.bucket("app")
    prepare(var_dir, database_url=database_url, bucket=app_bucket)
    env = django_environment(var_dir, database_url=database_url, bucket=app_bucket,
                             SECURE_LINK_DOWNLOAD_LOGS=cluster_download_logs(var_dir, origins))
    cluster = start_cluster(var_dir, env, storage=storage, origins=origins, apps=apps, interval=interval)
    try:
        yield cluster
    finally:
        cluster.stop()
