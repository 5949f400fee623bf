"""Section 1: links per second on one core, against the bare hash loop and other signers."""

from __future__ import annotations

import binascii
import hashlib
import time
from collections.abc import Callable, Sequence
from typing import Any

import itsdangerous

from signing import SecureLinkSigner, generate_secret
from signing.secure_link import md5 as library_md5

from .results import Report

PATHS = [f"/media/images/2026/11/{index:032x}.png" for index in range(1000)]
SECRET = generate_secret()
_TO_BASE64URL = bytes.maketrans(b"+/", b"-_")


def links_per_second(sign: Callable[[Any], object], items: Sequence[Any], seconds: float = 0.6, rounds: int = 3) -> float:
    """Best of ``rounds`` timed loops of about ``seconds`` each over ``items``."""
    best = 0.0
    batch = len(items)
    for _ in range(rounds):
        done = 0
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            for item in items:
                sign(item)
            done += batch
        best = max(best, done / elapsed)
    return best


def bare_loop(md5: Callable[[bytes], Any]) -> Callable[[bytes], str]:
    b2a = binascii.b2a_base64
    return lambda data: b2a(md5(data).digest())[:22].translate(_TO_BASE64URL).decode()


def run(report: Report, progress: Callable[[str], None]) -> None:
    section = "Signing throughput (one core)"
    signer = SecureLinkSigner(keys={"k1": SECRET}, active_kid="k1")
    expires = int(time.time()) + 3600
    signed_strings = [f"{expires}|k1||||{path}|{SECRET}".encode() for path in PATHS]

    progress("signing: bare hashlib.md5 + base64url loop (the floor)")
    floor = report.add(section, "floor: bare hashlib.md5 + base64url", links_per_second(bare_loop(hashlib.md5), signed_strings), "links/s",
                       "same signed strings, OpenSSL's MD5")
    fast_floor = report.add(section, "floor with CPython's built-in MD5", links_per_second(bare_loop(library_md5), signed_strings), "links/s",
                            "the MD5 the library uses")
    progress("signing: the public API")
    plain = report.add(section, "SecureLinkSigner.sign (plain link)", links_per_second(lambda p: signer.sign(p, ttl=3600), PATHS), "links/s")
    bound = report.add(section, "SecureLinkSigner.sign (ip + filename)", links_per_second(
        lambda p: signer.sign(p, ttl=3600, client_ip="203.0.113.7", filename="holiday photo.png"), PATHS), "links/s")

    progress("signing: itsdangerous and Django")
    timestamp_signer = itsdangerous.TimestampSigner(SECRET)
    its = report.add(section, "itsdangerous TimestampSigner.sign", links_per_second(timestamp_signer.sign, PATHS), "links/s")
    from django.core import signing as django_signing

    django_signer = django_signing.TimestampSigner(key=SECRET)
    report.add(section, "Django signing.TimestampSigner.sign", links_per_second(django_signer.sign, PATHS), "links/s")
    _optional_peers(report, section, progress)

    report.target("signing API / bare hashlib loop", plain.value / floor.value, 0.6)
    report.target("signing API (ip + filename) / bare loop", bound.value / floor.value, 0.6)
    report.target("signing API / itsdangerous", plain.value / its.value, 2.0)
    report.add(section, "signing API / floor with built-in MD5", plain.value / fast_floor.value, "x", "for reference")


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
