"""Section 1: links per second on one core, against other signers and the peer at two levels."""

from __future__ import annotations

import hashlib
import time
from datetime import datetime, timezone
from collections.abc import Callable, Sequence
from typing import Any

import itsdangerous

from signing import Key, KeySet, SecureLinkSigner, generate_secret

from .budget import BUDGET
from .results import Report

PATHS = [f"/media/images/2026/11/{index:032x}.png" for index in range(1000)]
SECRET = generate_secret()


def links_per_second(sign: Callable[[Any], object], items: Sequence[Any], seconds: float = 0.6, rounds: int = 3) -> float:
    """Best of ``rounds`` timed loops of about ``seconds`` each over ``items``."""
    best = 0.0
    batch = len(items)
    seconds = BUDGET.seconds(seconds) / (6 if BUDGET.quick else 1)
    for _ in range(BUDGET.count(rounds, 1)):
        done = 0
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            for item in items:
                sign(item)
            done += batch
        best = max(best, done / elapsed)
    return best


def run(report: Report, progress: Callable[[str], None]) -> None:
    section = "Signing throughput (one core)"
    signer = SecureLinkSigner(KeySet((Key("k1", SECRET),)))

    progress("signing: the library")
    plain = report.add(section, "SecureLinkSigner.sign (plain link)", links_per_second(lambda p: signer.sign(p, ttl=3600), PATHS), "links/s",
                       "the whole URL path and query")
    report.add(section, "SecureLinkSigner.sign (ip + filename)", links_per_second(
        lambda p: signer.sign(p, ttl=3600, client_ip="203.0.113.7", filename="holiday photo.png"), PATHS), "links/s")

    progress("signing: itsdangerous and Django")
    timestamp_signer = itsdangerous.TimestampSigner(SECRET)
    its = report.add(section, "itsdangerous TimestampSigner.sign", links_per_second(timestamp_signer.sign, PATHS), "links/s")
    from django.core import signing as django_signing

    django_signer = django_signing.TimestampSigner(key=SECRET)
    report.add(section, "Django signing.TimestampSigner.sign", links_per_second(django_signer.sign, PATHS), "links/s")
    report.target("signing: SecureLinkSigner.sign / itsdangerous TimestampSigner.sign", plain.value / its.value, 2.0)
    _peer(report, section, plain.value, progress)
    _optional_peers(report, section, progress)


def _peer(report: Report, section: str, ours: float, progress: Callable[[str], None]) -> None:
    """django-nginx-secure-links, at the same two levels: the link itself, and a Django storage's url()."""
    from django.conf import settings
    from django.core.files.storage import default_storage

    settings.SECURE_LINK_SECRET_KEY = SECRET  # the peer reads its settings when imported
    from nginx_secure_links.storages import FileStorage
    from nginx_secure_links.utils import gen_expires, gen_hash

    progress("signing: django-nginx-secure-links")
    peer = report.add(section, "django-nginx-secure-links gen_expires + gen_hash", links_per_second(
        lambda p: gen_hash(p, gen_expires(datetime.now(timezone.utc), 3600), SECRET), PATHS), "links/s",
        "token and expiry only, no URL")
    signed_strings = [f"1790000000|k1||||{path}|{SECRET}".encode() for path in PATHS]
    md5_alone = report.add(section, "hashlib.md5(signed string).digest() alone", links_per_second(
        lambda data: hashlib.md5(data).digest(), signed_strings), "hashes/s", "OpenSSL's MD5 through hashlib, per call")
    report.add(section, "SecureLinkSigner.sign / the peer's gen_expires + gen_hash", ours / peer.value, "x",
               f"no target (different work: the peer makes no URL); a link {1e6 / ours:.2f} µs, the peer's token "
               f"{1e6 / peer.value:.2f} µs; hashlib.md5 alone takes {1e6 / md5_alone.value:.2f} µs of each")
    names = [path.removeprefix("/media/") for path in PATHS]
    peer_storage = FileStorage(nginx_secret_key=SECRET, expires_seconds=3600, base_url="/media/")
    theirs = report.add(section, "django-nginx-secure-links FileStorage.url", links_per_second(peer_storage.url, names), "links/s")
    storage = report.add(section, "our storage's url() (SignedURLStorage, the default storage)",
                         links_per_second(default_storage.url, names), "links/s", "absolute URL when BASE_URL is set")
    report.target("signing, Django level: our storage.url() / the peer's FileStorage.url()", storage.value / theirs.value, 2.0)


def _optional_peers(report: Report, section: str, progress: Callable[[str], None]) -> None:
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        report.add(section, "boto3 generate_presigned_url", 0, "links/s", "not installed")
    else:
        progress("signing: boto3 (SigV4, offline)")
        client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
                              aws_secret_access_key=SECRET, config=Config(signature_version="s3v4"))
        rate = links_per_second(lambda p: client.generate_presigned_url(
            "get_object", Params={"Bucket": "media", "Key": p}, ExpiresIn=3600), PATHS[:100], seconds=0.4, rounds=2)
        report.add(section, "boto3 generate_presigned_url (S3 SigV4)", rate, "links/s")
    try:
        from akamai.edgeauth import EdgeAuth
    except ImportError:
        report.add(section, "akamai-edgeauth", 0, "links/s", "not installed")
    else:
        progress("signing: akamai-edgeauth")
        edge = EdgeAuth(key=SECRET.encode().hex(), window_seconds=3600)
        report.add(section, "akamai-edgeauth generate_url_token", links_per_second(edge.generate_url_token, PATHS), "links/s")
