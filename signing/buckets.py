"""An S3-compatible bucket: where the files are, and the credentials that read or write them.

A bucket is one value, :class:`Bucket`, written as one setting::

    s3://NAME?endpoint=http://127.0.0.1:8333&region=us-east-1&addressing=path&credentials=/srv/app/var/s3.credentials

``endpoint`` is the storage's base URL (AWS: ``https://s3.eu-west-1.amazonaws.com``);
``addressing`` is ``path`` (``endpoint/NAME/KEY``: MinIO, Ceph RGW, SeaweedFS) or ``virtual``
(``NAME.endpoint-host/KEY``: AWS); ``credentials`` names a file of mode 0600 holding
``ACCESS_KEY_ID=...`` and ``SECRET_ACCESS_KEY=...`` lines, else they come from the environment
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``). A secret is never in the URL, a message or a
repr. The Django storage (:mod:`signing.django.s3`) writes with the app's credentials; the
origin nginx reads with its own, read-only ones (:func:`signing.nginx.install.install`).
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ADDRESSING_STYLES = ("path", "virtual")
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")  # S3's rules for a bucket's name
_REGION = re.compile(r"[a-z0-9-]{1,32}")
_KEY_ID = re.compile(r"[A-Za-z0-9_.+=-]{3,128}")
_SECRET = re.compile(r"[A-Za-z0-9/+=._~-]{8,128}")


_USERINFO = re.compile(r"(?<=//)[^/?#]*@")


def shown(url: str) -> str:
    """``url`` as a message may show it: without a user and password (``//user:secret@``)."""
    return _USERINFO.sub("***@", url)


@dataclass(frozen=True)
class Credentials:
    """An access key id and its secret (never shown)."""

    key_id: str
    secret: str = field(repr=False)

    def check(self) -> Credentials:
        if not _KEY_ID.fullmatch(self.key_id):
            raise ValueError("the access key id must be 3 to 128 of A-Z a-z 0-9 and _ . + = -")
        if not _SECRET.fullmatch(self.secret):
            raise ValueError(f"the secret of access key {self.key_id} must be 8 to 128 of A-Z a-z 0-9 and / + = . _ ~ -")
        return self

    @classmethod
    def from_file(cls, path: Path) -> Credentials:
        """Read ``ACCESS_KEY_ID=`` and ``SECRET_ACCESS_KEY=`` lines from a file only its owner can read."""
        path = Path(path)
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise ValueError(f"cannot read the credentials file {path}: {error.strerror}") from None
        if mode & 0o077:
            raise ValueError(f"the credentials file {path} is readable by others (mode {mode:o}): chmod 600 {path}")
        entries = dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
        try:
            return cls(entries["ACCESS_KEY_ID"].strip(), entries["SECRET_ACCESS_KEY"].strip()).check()
        except KeyError:
            raise ValueError(f"the credentials file {path} needs ACCESS_KEY_ID= and SECRET_ACCESS_KEY= lines") from None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Credentials:
        """``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY``."""
        key_id, secret = environ.get("AWS_ACCESS_KEY_ID", ""), environ.get("AWS_SECRET_ACCESS_KEY", "")
        if not key_id or not secret:
            raise ValueError("no credentials: name a file with credentials=FILE in the bucket's URL, or set "
                             "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
        return cls(key_id, secret).check()

    def render(self) -> str:
        """The text of a credentials file for these credentials."""
        return f"ACCESS_KEY_ID={self.key_id}\nSECRET_ACCESS_KEY={self.secret}\n"


@dataclass(frozen=True)
class Bucket:
    """A bucket of an S3-compatible storage, where it is and how to address it."""

    name: str
    endpoint: str
    region: str = "us-east-1"
    addressing: str = "path"
    credentials_file: Path | None = None

    @classmethod
    def parse(cls, url: str) -> Bucket:
        """``s3://NAME?endpoint=URL[&region=R][&addressing=path|virtual][&credentials=FILE]``;
        ValueError in one line saying what to write."""
        parts = urlsplit(url.strip())
        if parts.scheme != "s3" or not parts.netloc or parts.path not in ("", "/"):
            raise ValueError(f"a bucket is s3://NAME?endpoint=URL&region=REGION&credentials=FILE, got {shown(url)!r}")
        if "@" in parts.netloc:
            raise ValueError("credentials never go in the bucket's URL: name a file with credentials=FILE")
        query = {name: values[-1] for name, values in parse_qs(parts.query, keep_blank_values=True).items()}
        unknown = set(query) - {"endpoint", "region", "addressing", "credentials"}
        if unknown:
            raise ValueError(f"the bucket's URL has unknown parameters: {', '.join(sorted(unknown))}")
        if "endpoint" not in query:
            raise ValueError(f"the bucket's URL needs its storage's endpoint: s3://{parts.netloc}?endpoint=https://...")
        credentials = query.get("credentials")
        return cls(parts.netloc, query["endpoint"].rstrip("/"), query.get("region", "us-east-1"),
                   query.get("addressing", "path"), Path(credentials) if credentials else None).check()

    def check(self) -> Bucket:
        if not _BUCKET_NAME.fullmatch(self.name):
            raise ValueError(f"bucket name {self.name!r} is not one S3 accepts (3 to 63 of a-z 0-9 . -)")
        endpoint = urlsplit(self.endpoint)
        if (endpoint.scheme not in ("http", "https") or not endpoint.hostname or endpoint.path not in ("", "/")
                or endpoint.query or endpoint.fragment or "@" in endpoint.netloc):
            raise ValueError(f"the endpoint must be http(s)://HOST[:PORT], got {shown(self.endpoint)!r}")
        try:
            endpoint.port
        except ValueError:
            raise ValueError(f"the endpoint's port is not a number: {shown(self.endpoint)!r}") from None
        if not _REGION.fullmatch(self.region):
            raise ValueError(f"region {self.region!r} is not a region's name (us-east-1)")
        if self.addressing not in ADDRESSING_STYLES:
            raise ValueError(f"addressing must be one of {ADDRESSING_STYLES}, got {self.addressing!r}")
        return self

    def credentials(self, environ: Mapping[str, str] = os.environ) -> Credentials:
        """The credentials of ``credentials_file``, else of the environment."""
        if self.credentials_file is not None:
            return Credentials.from_file(self.credentials_file)
        return Credentials.from_environment(environ)

    @property
    def scheme(self) -> str:
        return urlsplit(self.endpoint).scheme

    @property
    def address(self) -> str:
        """``host:port`` of the storage, the port spelled out."""
        endpoint = urlsplit(self.endpoint)
        port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
        host = f"[{endpoint.hostname}]" if ":" in (endpoint.hostname or "") else endpoint.hostname
        return f"{host}:{port}"

    @property
    def host(self) -> str:
        """The ``Host`` header of a request for an object (what SigV4 signs)."""
        netloc = urlsplit(self.endpoint).netloc
        return netloc if self.addressing == "path" else f"{self.name}.{netloc}"

    @property
    def tls_name(self) -> str:
        """The name the storage's certificate must hold (SNI): the host without its port."""
        hostname = urlsplit(self.endpoint).hostname or ""
        return hostname if self.addressing == "path" else f"{self.name}.{hostname}"

    @property
    def path_prefix(self) -> str:
        """What stands before an object's key in a request's path: ``/NAME`` in path style."""
        return f"/{self.name}" if self.addressing == "path" else ""

    def __str__(self) -> str:
        credentials = f"&credentials={self.credentials_file}" if self.credentials_file else ""
        return f"s3://{self.name}?endpoint={self.endpoint}&region={self.region}&addressing={self.addressing}{credentials}"
