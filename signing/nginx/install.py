"""The nginx folder this package ships, and putting it where nginx reads its config.

:func:`install` writes into a config folder (``/etc/nginx`` on Debian: the folder of nginx's
main config, against which every relative ``include`` is resolved) the shipped ``secure_link/``
folder and the role files ``secure_link.conf`` (origin) and ``edge.conf``, the keys includes
(0600) and ``secure_link_lua.conf``, the absolute ``lua_package_path`` that finds the Lua
modules whatever nginx's prefix. :func:`include_lines` says what to add to the operator's own
``http`` and ``server`` blocks; :func:`render_template` fills a whole site from
``templates/origin-site.conf`` or ``templates/edge-site.conf`` (what the demo and the tests
run). ``nginx/README.md`` shows the folder.
"""

from __future__ import annotations

import argparse
import re
import secrets
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..buckets import Bucket, Credentials
from ..keys import KeySet, write_private_file
from .counter import COUNTER_INCLUDE, DownloadCounter, render_counter_include
from .shipped import shipped_folder

SNIPPETS = "secure_link"  # the shipped folder of snippets, copied whole
ROLE_FILES = {"origin": "secure_link.conf", "edge": "edge.conf"}
BUCKET_ROLE_FILE = "secure_link_s3.conf"  # the origin's role when its files are in a bucket
INSTALLED_ROLE_FILES = (*ROLE_FILES.values(), BUCKET_ROLE_FILE)
LUA_PATH_INCLUDE = "secure_link_lua.conf"
BUCKET_INCLUDE = "secure_link_bucket.conf"
DEFAULT_ORIGIN_CACHE = Path("/var/cache/nginx/secure_link_origin")
DEFAULT_SIGNER_SOCKET = Path("/run/secure_link_s3.sock")
DEFAULT_FRESHNESS = 60  # seconds
DEFAULT_CA_FILE = Path("/etc/ssl/certs/ca-certificates.crt")  # Debian's (ca-certificates)
# A value nginx's config holds between double quotes as it is: no quote, '$', ';', braces,
# backslash or white space.
_CONFIG_SAFE = re.compile(r'[^"$;{}\\\s]*')
_PLACEHOLDER = re.compile(r"@([A-Z][A-Z0-9_]*)@")
_OWN_LINE = re.compile(r"(?P<indent>[ \t]*)@(?P<name>[A-Z][A-Z0-9_]*)@[ \t]*(?:#.*)?")


def config_value(value: str | Path, *, what: str) -> str:
    """``value`` as nginx's config can hold it between quotes, or ValueError naming ``what``."""
    text = str(value)
    if not _CONFIG_SAFE.fullmatch(text):
        raise ValueError(f"{what} {text!r} has a character nginx's config cannot hold (a quote, $, ;, braces, "
                         "a backslash or a space): use another folder")
    return text


@dataclass(frozen=True)
class OriginBucket:
    """What an origin needs to fetch its files from a bucket: the bucket, the origin's own
    read-only credentials, its cache's folder, its signer's socket, the signer's log (or none),
    the freshness bound (seconds a cached copy is served before it is revalidated), for an https
    storage the CA certificates that verify it, and the gate value its cache tier shows its signer
    (random, one per install)."""

    bucket: Bucket
    credentials: Credentials
    cache_dir: Path
    signer_socket: Path
    fetch_log: Path | None = None
    freshness: int = DEFAULT_FRESHNESS
    ca_file: Path = DEFAULT_CA_FILE
    gate: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)  # this install's; the signer's key

    def render(self) -> str:
        """secure_link_bucket.conf, from the shipped template; ValueError in one line for a value
        that cannot work."""
        if not 1 <= self.freshness <= 86400:
            raise ValueError(f"the freshness bound must be 1 to 86400 seconds, got {self.freshness}")
        log = [f"access_log {config_value(self.fetch_log, what='the fetch log')} secure_link_s3;"] \
            if self.fetch_log else ["access_log off;"]
        tls: list[str] = []
        if self.bucket.scheme == "https":
            if not Path(self.ca_file).is_file():
                raise ValueError(f"the storage is https and the CA certificates file {self.ca_file} does not exist: "
                                 "install ca-certificates, or name the file (--ca-file)")
            tls = ["proxy_ssl_server_name on;", f"proxy_ssl_name {config_value(self.bucket.tls_name, what='the storage host')};", "proxy_ssl_verify on;",
                   f"proxy_ssl_trusted_certificate {config_value(self.ca_file, what='the CA file')};"]
        return render_template(shipped_folder() / "templates" / "bucket.conf", {
            "S3_ADDRESS": self.bucket.address, "SIGNER_SOCKET": str(self.signer_socket), "CACHE_DIR": str(self.cache_dir),
            "FETCH_LOG": log, "S3_TLS": tls, "S3_SCHEME": self.bucket.scheme, "S3_HOST": self.bucket.host,
            "S3_PREFIX": self.bucket.path_prefix, "S3_REGION": self.bucket.region, "FRESHNESS": str(self.freshness),
            "S3_KEY_ID": self.credentials.key_id, "S3_SECRET": self.credentials.secret,
            "GATE": self.gate,
        })


def add_origin_bucket_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of an origin whose files are in a bucket, as both installer commands take them."""
    parser.add_argument("--cache-folder", type=Path, default=DEFAULT_ORIGIN_CACHE,
                        help=f"files in a bucket: the origin's cache of objects (default {DEFAULT_ORIGIN_CACHE})")
    parser.add_argument("--signer-socket", type=Path, default=DEFAULT_SIGNER_SOCKET,
                        help=f"files in a bucket: the unix socket of the origin's signer (default {DEFAULT_SIGNER_SOCKET})")
    parser.add_argument("--freshness", type=int, default=DEFAULT_FRESHNESS, metavar="SECONDS",
                        help="files in a bucket: how long a cached copy is served before the bucket is asked again "
                             f"(default {DEFAULT_FRESHNESS})")
    parser.add_argument("--ca-file", type=Path, default=DEFAULT_CA_FILE,
                        help=f"files in an https bucket: the CA certificates that verify it (default {DEFAULT_CA_FILE})")


def add_counter_arguments(parser: argparse.ArgumentParser) -> None:
    """The download counter's option, as both installer commands take it."""
    parser.add_argument("--counter", action="append", default=[], metavar="URL",
                        help="an origin: an app server that counts downloads of download-limited links, "
                             "http://IP:PORT or unix:/PATH (once per app server; without one such links get 503)")


def origin_bucket(bucket: Bucket, credentials: Credentials, options: Mapping[str, Any]) -> OriginBucket:
    """The origin's bucket from the options of :func:`add_origin_bucket_arguments`."""
    return OriginBucket(bucket, credentials, options["cache_folder"], options["signer_socket"],
                        freshness=options["freshness"], ca_file=options["ca_file"])


def install(config_folder: Path, key_set: KeySet, *, bucket: OriginBucket | None = None,
            counter: DownloadCounter | None = None, replacing: Mapping[str, Path] | None = None) -> list[Path]:
    """Write the shipped folder, the role files, the keys includes, the Lua path and the download
    counter's include (``counter``: the app servers an origin asks; without one an existing include
    stays, and a new one names none, so that limited links get 503) into ``config_folder``, and
    with ``bucket`` the origin's secure_link_bucket.conf.

    ``secure_link/`` is replaced whole (a reader sees the old folder or the new one); the keys
    includes are the nginx keys of ``key_set``, and secure_link_bucket.conf holds the origin's
    credentials (each mode 0600). ``replacing`` maps a path below the folder to a file put there
    instead of the shipped one (a test's deliberately broken copy, a benchmark's variant).
    Returns the files and folders written.
    """
    folder = Path(config_folder).resolve()
    lua_path = config_value(folder, what="the config folder")
    bucket_conf = bucket.render() if bucket is not None else None  # a value that cannot work: nothing written
    folder.mkdir(parents=True, exist_ok=True)
    shipped = shipped_folder()
    staging = Path(tempfile.mkdtemp(dir=folder, prefix=f".{SNIPPETS}."))
    shutil.copytree(shipped / SNIPPETS, staging, dirs_exist_ok=True)
    staging.chmod(0o755)
    old = folder / f".{SNIPPETS}.old"
    shutil.rmtree(old, ignore_errors=True)
    if (folder / SNIPPETS).exists():
        (folder / SNIPPETS).rename(old)
    staging.rename(folder / SNIPPETS)
    shutil.rmtree(old, ignore_errors=True)
    written = [folder / SNIPPETS]
    for role_file in INSTALLED_ROLE_FILES:
        shutil.copyfile(shipped / role_file, folder / role_file)
        written.append(folder / role_file)
    for relative, source in (replacing or {}).items():
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    (folder / LUA_PATH_INCLUDE).write_text(
        "# Written by the installer (manage.py install_nginx, python -m signing install-nginx): where\n"
        "# secure_link/lua/ is, whatever nginx's prefix. The include fails `nginx -t` when it is not there.\n"
        f'lua_package_path "{lua_path}/?.lua;;";\n'
        f'include "{lua_path}/{SNIPPETS}/lua/package_path.conf";\n'
    )
    written.append(folder / LUA_PATH_INCLUDE)
    written += key_set.nginx_keys().write_nginx_includes(folder)
    if counter is not None or not (folder / COUNTER_INCLUDE).exists():  # an install without --counter keeps the one there
        write_private_file(folder / COUNTER_INCLUDE, counter.render() if counter else render_counter_include((), ""))
        written.append(folder / COUNTER_INCLUDE)
    if bucket_conf is not None:
        write_private_file(folder / BUCKET_INCLUDE, bucket_conf)
        written.append(folder / BUCKET_INCLUDE)
    return written


def include_lines(role: str, *, media_root: Path | None = None, state_root: Path | None = None,
                  bucket: bool = False) -> str:
    """What the operator adds to their own config for ``role`` (``origin`` or ``edge``; an origin
    whose files are in a bucket with ``bucket``), with their paths."""
    state = config_value(state_root, what="the state folder") if state_root else "/var/lib/secure_link"
    logs = ("    access_log /var/log/nginx/access.log secure_link;  # never `combined`: it logs the token\n"
            "    access_log /var/log/nginx/downloads.log secure_link_downloads buffer=64k flush=1s if=$secure_link_id;\n"
            "    access_log /var/log/nginx/failures.log secure_link_failures if=$secure_link_failure;  # no token in the error log\n")
    if role == "edge":
        return ("In http { }:\n"
                "    proxy_cache_path /var/cache/nginx/secure_link keys_zone=secure_link_edge:50m levels=1:2 "
                "max_size=10g inactive=7d use_temp_path=off;\n"
                "    upstream secure_link_origin { server ORIGIN:80; keepalive 32; }\n"
                "    include secure_link/http/edge.conf;\n"
                "In the edge's server { }:\n" + logs +
                f'    set $secure_link_state_root "{state}";  # its sync agent keeps the revocations here\n'
                "    include edge.conf;\n")
    files = ("" if bucket else
             f'    set $secure_link_media_root "{config_value(media_root, what="MEDIA_ROOT") if media_root else "/srv/app/media"}";\n')
    return ("In http { } (before the server blocks):\n"
            f"    include secure_link/http/{'origin_s3' if bucket else 'origin'}.conf;\n"
            "In the server { } that fronts your Django app:\n" + logs + files +
            f'    set $secure_link_state_root "{state}";\n'
            "    # set_real_ip_from EDGE_ADDRESS;  (one line per edge in front of this origin, if any)\n"
            f"    include {BUCKET_ROLE_FILE if bucket else ROLE_FILES['origin']};\n")


def install_report(config_folder: Path, key_set: KeySet, *, role: str, media_root: Path | None = None,
                   state_root: Path | None = None, bucket: OriginBucket | None = None,
                   counter: DownloadCounter | None = None) -> str:
    """What an install wrote and the lines to add, as both installer commands print it."""
    kids = ", ".join(key_set.nginx_keys().kids) or "none"
    folder = Path(config_folder).resolve()
    fetching = (f"; {BUCKET_INCLUDE} fetches from {bucket.bucket.name} at {bucket.bucket.endpoint} as "
                f"{bucket.credentials.key_id} (mode 0600)") if bucket else ""
    if role == "origin":
        fetching += (f"; {COUNTER_INCLUDE} counts limited downloads at {', '.join(counter.urls)}" if counter else
                     f"; {COUNTER_INCLUDE} as it was (a new one names no counter: download-limited links get 503 "
                     "until --counter is given)")
    return (f"installed the nginx folder into {folder}: {SNIPPETS}/, "
            f"{', '.join(INSTALLED_ROLE_FILES)}, {LUA_PATH_INCLUDE}, {COUNTER_INCLUDE} and the keys includes "
            f"(keys {kids}; mode 0600){fetching}.\n"
            f"{folder} must be the folder of nginx's main config: relative includes are found there.\n"
            f"{include_lines(role, media_root=media_root, state_root=state_root, bucket=bucket is not None)}"
            "Then: nginx -t && nginx -s reload\n")


def render_template(template: Path, values: Mapping[str, str | Sequence[str]]) -> str:
    """A site from ``template``: each ``@NAME@`` outside a comment replaced by its value.

    A placeholder alone on its line (the comment after it documents it) takes a list of lines,
    or none; one inside a line takes a string, which must be a value nginx's config can hold.
    A placeholder without a value and a value without a placeholder are ValueErrors, so a
    template and its caller cannot drift apart.
    """
    lines: list[str] = []
    used: set[str] = set()
    for line in template.read_text().splitlines():
        alone = _OWN_LINE.fullmatch(line)
        if alone:
            name = alone.group("name")
            used.add(name)
            value = _value(values, name, template)
            if isinstance(value, str):
                raise ValueError(f"@{name}@ stands alone on its line in {template.name}: give it a list of lines")
            lines += [alone.group("indent") + entry for entry in value]
            continue
        code, hash_mark, comment = line.partition("#")
        for name in _PLACEHOLDER.findall(code):
            used.add(name)
            value = _value(values, name, template)
            if not isinstance(value, str):
                raise ValueError(f"@{name}@ stands inside a line in {template.name}: give it one value")
            code = code.replace(f"@{name}@", config_value(value, what=f"@{name}@"))
        lines.append(code + hash_mark + comment)
    unused = set(values) - used
    if unused:
        raise ValueError(f"{template.name} has no placeholder for {', '.join(sorted(unused))}")
    return "\n".join(lines) + "\n"


def _value(values: Mapping[str, str | Sequence[str]], name: str, template: Path) -> str | Sequence[str]:
    if name not in values:
        raise ValueError(f"{template.name} needs a value for @{name}@")
    return values[name]
