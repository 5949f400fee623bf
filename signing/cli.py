"""Command line: ``python -m signing COMMAND``.

Commands: genkey, sign, sign-cookie, verify, nginx-keys, install-nginx, sync-keys, and the CDNs'
cloudfront, cloudcdn and akamai.

Secrets come from ``--keys-file`` or the ``SECURE_LINK_KEYS`` environment variable
(``kid=secret`` entries), never from the command line. The active key is ``--kid``,
else ``SECURE_LINK_ACTIVE_KID``, else the key file's ``active:`` line, else the last key.

``verify`` exits 0 for a valid link, 1 for an invalid one (nginx: 403), 3 for an expired
one (410) and 4 for a request nginx refuses as malformed (400); 2 means a usage error.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from .cdn.cli import add_cdn_commands
from .encoding import utc_iso
from .exc import BadSignature, KeySetError, LinkError, LinkExpired, LinkNotYetValid, MalformedRequest
from .fleet.agent import DEFAULT_TEST_COMMAND, KeySync
from .keys import KeySet, generate_secret, nginx_includes_directory
from .buckets import Bucket
from .nginx.counter import DownloadCounter
from .nginx.install import (
    ROLE_FILES,
    add_counter_arguments,
    add_origin_bucket_arguments,
    install,
    install_report,
    origin_bucket,
)
from .nginx.link_state import LinkState
from .nginx.signer import SecureLinkSigner
from .nginx.verifier import SecureLinkVerifier

EXIT_VALID, EXIT_INVALID, EXIT_USAGE, EXIT_EXPIRED, EXIT_MALFORMED = 0, 1, 2, 3, 4


def load_keys(options: argparse.Namespace) -> KeySet:
    """The key set of ``--keys-file`` or of ``$SECURE_LINK_KEYS``, with ``--kid`` pinned if given."""
    if options.keys_file is not None:
        key_set = KeySet.from_file(options.keys_file)
        pinned = os.environ.get("SECURE_LINK_ACTIVE_KID")
        key_set = key_set.with_active(pinned) if pinned else key_set
    else:
        key_set = KeySet.from_environment()
        if not key_set.keys:
            raise KeySetError("no keys: pass --keys-file FILE or set SECURE_LINK_KEYS='kid=secret'")
    kid = getattr(options, "kid", None)
    return key_set.with_active(kid) if kid else key_set


def command_genkey(options: argparse.Namespace) -> int:
    print(generate_secret())
    return EXIT_VALID


def command_sign(options: argparse.Namespace) -> int:
    signer = SecureLinkSigner(load_keys(options), prefix=options.prefix, expiry_bucket=options.expiry_bucket)
    link = signer.sign(
        options.path,
        ttl=options.ttl,
        client_ip=options.client_ip,
        filename=options.filename,
        disposition="inline" if options.inline else None,
        link_id=options.link_id,
        not_before=options.not_before,
        max_downloads=options.max_downloads,
    )
    print(options.base_url.rstrip("/") + link.url)
    return EXIT_VALID


def command_sign_cookie(options: argparse.Namespace) -> int:
    signer = SecureLinkSigner(load_keys(options), prefix=options.prefix, expiry_bucket=options.expiry_bucket)
    grant = signer.sign_folder_cookie(options.folder, ttl=options.ttl, client_ip=options.client_ip)
    for name, value in grant.cookies.items():
        print(f"{name}={value}")
    return EXIT_VALID


def command_verify(options: argparse.Namespace) -> int:
    parts = urlsplit(options.url)
    raw_path = (parts.path or "/").encode("utf-8")
    try:
        verified = SecureLinkVerifier(load_keys(options), prefix=options.prefix).verify(
            raw_path=raw_path, query=parts.query.encode("utf-8"), remote_addr=options.remote_addr,
            cookies=[cookie.encode("utf-8") for cookie in options.cookie],
        )
    except MalformedRequest as error:
        print(f"malformed (400): {error}")
        return EXIT_MALFORMED
    except LinkExpired as error:
        print(f"expired (410): expired at {utc_iso(error.expires)}")
        return EXIT_EXPIRED
    except LinkNotYetValid as error:
        print(f"not yet valid (403): opens at {utc_iso(error.not_before)}")
        return EXIT_INVALID
    except BadSignature as error:
        print(f"invalid (403): {error}")
        if b"ip=1" in parts.query.encode() or ",ip," in parts.path:
            print(f"note: the link is bound to a client address; checked as if from {options.remote_addr} "
                  "(pass the client's address with --remote-addr)")
        return EXIT_INVALID
    extra = "".join(f", {label} {value}" for label, value in (
        ("link", verified.link_id), ("not before", verified.not_before), ("downloads", verified.max_downloads))
        if value is not None)
    print(f"valid: {verified.uri.decode('utf-8', 'replace')} until {verified.expires} (key {verified.kid}{extra})")
    return EXIT_VALID


def command_nginx_keys(options: argparse.Namespace) -> int:
    key_set = load_keys(options)
    written = key_set.write_nginx_includes(nginx_includes_directory(options.output))
    print(f"wrote {len(key_set)} key(s) ({', '.join(key_set.kids)}) to {' and '.join(map(str, written))} (mode 0600)")
    return EXIT_VALID


def command_install_nginx(options: argparse.Namespace) -> int:
    key_set = load_keys(options).check()
    bucket = None
    if options.bucket:
        found = Bucket.parse(options.bucket)
        bucket = origin_bucket(found, found.credentials(), vars(options))
    counter = None
    if options.counter:
        if options.fleet_token_file is None:
            raise ValueError("--counter needs the fleet token: give its file with --fleet-token-file")
        counter = DownloadCounter.of(options.counter, options.fleet_token_file.read_text(encoding="utf-8").strip())
    install(options.config_folder, key_set, bucket=bucket, counter=counter)
    print(install_report(options.config_folder, key_set, role=options.role, media_root=options.media_root,
                         state_root=options.state_root, bucket=bucket, counter=counter), end="")
    return EXIT_VALID


def command_sync_keys(options: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s sync-keys: %(message)s")
    sync = KeySync(source=options.source, token=options.token_file.read_text(encoding="utf-8").strip(),
                   output=options.output, pid_file=options.pid_file, test_command=options.test_command,
                   timeout=options.timeout, state=LinkState(options.state_dir) if options.state_dir else None)
    if options.once:
        result = sync.sync_once()
        return EXIT_VALID if result.error is None and sync.revocation_error is None else EXIT_INVALID
    try:
        sync.run(interval=options.interval)
    except KeyboardInterrupt:  # Ctrl-C in the terminal that started it
        pass
    return EXIT_VALID


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m signing", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def with_keys(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument("--keys-file", type=Path, help="file of kid=[algorithm:]secret lines (else $SECURE_LINK_KEYS)")
        return sub

    def with_signer(sub: argparse.ArgumentParser, *, signing: bool) -> argparse.ArgumentParser:
        with_keys(sub)
        if signing:
            sub.add_argument("--kid", help="key id to sign with (default: the keys' active key, else the last)")
            sub.add_argument("--expiry-bucket", type=int, default=0, help="round expires up to a multiple of this (s)")
        sub.add_argument("--prefix", default="/media/", help="protected URL prefix")
        return sub

    commands.add_parser("genkey", help="print a new random secret").set_defaults(run=command_genkey)

    sign = with_signer(commands.add_parser("sign", help="print a signed link"), signing=True)
    sign.add_argument("path", help="decoded URL path, e.g. '/media/images/a b.jpg'")
    sign.add_argument("--ttl", type=int, required=True, help="lifetime in seconds")
    sign.add_argument("--client-ip", metavar="ADDR[/LENGTH]",
                      help="bind the link to this client address, or with /LENGTH to its network of LENGTH bits")
    sign.add_argument("--filename", help="download name sent in Content-Disposition")
    sign.add_argument("--inline", action="store_true", help="Content-Disposition: inline")
    sign.add_argument("--base-url", default="", help="scheme and host to prepend")
    sign.add_argument("--link-id", help="the link's id (default: a random one)")
    sign.add_argument("--not-before", type=int, metavar="UNIX", help="refused (403) before this Unix time")
    sign.add_argument("--max-downloads", type=int, metavar="N", help="the link may be downloaded N times")
    sign.set_defaults(run=command_sign)

    cookie = with_signer(commands.add_parser("sign-cookie", help="print a folder cookie for our nginx (Name=Value)"),
                         signing=True)
    cookie.add_argument("folder", help="decoded folder path ending with '/', e.g. /media/videos/42/")
    cookie.add_argument("--ttl", type=int, required=True, help="lifetime in seconds")
    cookie.add_argument("--client-ip", metavar="ADDR[/LENGTH]",
                        help="bind the cookie to this client address, or with /LENGTH to its network of LENGTH bits")
    cookie.set_defaults(run=command_sign_cookie)

    verify = with_signer(commands.add_parser("verify", help="check a link as nginx would"), signing=False)
    verify.add_argument("url", help="the link, absolute or path?query")
    verify.add_argument("--remote-addr", default="127.0.0.1",
                        help="the client's address, as nginx's $remote_addr (default 127.0.0.1; matters for ip=1 links)")
    verify.add_argument("--cookie", action="append", default=[], metavar="HEADER",
                        help="a Cookie header sent with the request, e.g. 'secure_link_folder=...' (repeatable)")
    verify.set_defaults(run=command_verify)

    nginx_keys = with_keys(commands.add_parser("nginx-keys", help="write nginx's keys includes"))
    nginx_keys.add_argument("--output", type=Path, required=True,
                            help="folder to write secure_link_keys.conf and secure_link_hmac_keys.conf into (0600)")
    nginx_keys.set_defaults(run=command_nginx_keys)

    installer = with_keys(commands.add_parser(
        "install-nginx", help="write the shipped nginx folder, the keys includes and the Lua path into nginx's "
                              "config folder, and print the lines to add"))
    installer.add_argument("--config-folder", type=Path, required=True,
                           help="the folder of nginx's main config, e.g. /etc/nginx")
    installer.add_argument("--role", choices=list(ROLE_FILES), default="origin",
                           help="which lines to print (default origin)")
    installer.add_argument("--media-root", type=Path, help="the files' folder, for the printed lines")
    installer.add_argument("--state-root", type=Path, help="the per-link state folder, for the printed lines")
    add_counter_arguments(installer)
    installer.add_argument("--fleet-token-file", type=Path, metavar="FILE",
                           help="the fleet token's file: the counter's token is derived from it")
    installer.add_argument("--bucket", metavar="URL",
                           help="an origin whose files are in a bucket: s3://NAME?endpoint=...&credentials=FILE, "
                                "with the origin's own read-only credentials")
    add_origin_bucket_arguments(installer)
    installer.set_defaults(run=command_install_nginx)

    sync = commands.add_parser("sync-keys", help="keep this nginx's keys includes in step with the app (a verifier's agent)")
    sync.add_argument("--from", dest="source", required=True, help="the app's base URL, e.g. https://origin.example")
    sync.add_argument("--token-file", type=Path, required=True, help="file holding the fleet token (mode 0600)")
    sync.add_argument("--output", type=Path, required=True, help="nginx's config folder, where the keys includes live")
    sync.add_argument("--pid-file", type=Path, required=True, help="nginx's pid file (SIGHUP reloads it)")
    sync.add_argument("--test-command", default=DEFAULT_TEST_COMMAND, help="the nginx config test run before each reload")
    sync.add_argument("--interval", type=float, default=5.0, help="seconds between two pulls (default 5)")
    sync.add_argument("--timeout", type=float, default=3.0, help="seconds one pull may take (default 3)")
    sync.add_argument("--state-dir", type=Path,
                      help="this verifier's per-link state folder ($secure_link_state_root): keep the revoked link ids there")
    sync.add_argument("--once", action="store_true", help="one round, then exit 0 (in step) or 1 (failed)")
    sync.set_defaults(run=command_sync_keys)
    add_cdn_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    options = make_parser().parse_args(argv)
    try:
        status: int = options.run(options)
    except (ValueError, LinkError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    return status


