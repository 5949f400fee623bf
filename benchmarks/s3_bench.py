"""Section 7: files in a bucket. The bucket origin's cache hits and misses, by CPU per request,
against the same file from the disk origin and against a direct GET from the storage with a
boto3 presigned URL; and what one SigV4 signature costs the origin.

SeaweedFS (harness/seaweedfs.py) holds the files the disk origin serves from its media folder.
Three nginx: the disk origin, the bucket origin (nginx/secure_link_s3.conf as shipped) and a copy
of it whose fetch location never caches (every request a miss: for measurement only). A miss
costs the origin's worker (its check, its cache tier, its signer) and the storage's process;
both are counted, as the storage's is for the presigned GET. All of them run on one core, wrk
on the other (benchmarks/pinned.py).
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.nginx import SNIPPETS_DIR, NginxServer, start_nginx
from harness.seaweedfs import SeaweedFS, running_seaweedfs
from signing import KeySet, SecureLinkSigner
from signing.keys import KEYS_FILE_NAME
from tests.client import fetch

from .budget import BUDGET
from .edge_bench import _variant
from .pinned import SECONDS, OtherServer, measure_pairs, measure_trusted_pairs
from .results import Report
from .setup import BenchData

DISK = "disk origin, signed link"
DISK_AGAIN = "disk origin, signed link again (A/A control)"
HIT = "bucket origin, cache hit"
MISS = "bucket origin, cache miss (origin + storage CPU)"
PRESIGNED = "storage, boto3 presigned GET (storage CPU)"
ONE_MB = 1_000_000
PAIRS_20KB = 4  # 20 KB: the A/A control repeats the disk origin's link (the base of every ratio)
BIG_PAIRS = 2  # 1 MB: fewer pairs, no A/A control
SIGNATURES = 20_000  # per round of the signing measurement
ROUNDS = 5


def run(report: Report, data: BenchData, progress: Callable[[str], None]) -> None:
    media = data.var_dir / "media"
    (media / "bench" / "1MB.bin").write_bytes(random.Random(1).randbytes(ONE_MB))
    names = {"20KB": data.names["20KB"], "1MB": "bench/1MB.bin"}
    key_set = KeySet.from_file(data.var_dir / KEYS_FILE_NAME)
    signer = SecureLinkSigner(key_set)
    progress("s3: starting SeaweedFS and putting the files in its bucket")
    with running_seaweedfs(data.var_dir / "seaweedfs") as storage:
        app = storage.client("app")
        for name in names.values():
            app.put_object(Bucket="media", Key=name, Body=(media / name).read_bytes())
        servers: list[NginxServer] = []
        try:
            disk = start_nginx(data.var_dir / "s3-disk-origin", media_root=media, key_set=key_set)
            servers.append(disk)
            bucket = start_nginx(data.var_dir / "s3-origin", media_root=media, key_set=key_set,
                                 bucket=storage.bucket("origin"), extra_site_directives=_signing_location(storage))
            servers.append(bucket)
            never_cached = start_nginx(data.var_dir / "s3-origin-miss", media_root=media, key_set=key_set,
                                       bucket=storage.bucket("origin"), snippets=_never_cached(data.var_dir))
            servers.append(never_cached)
            origins = Origins(disk, bucket, never_cached, OtherServer(storage.endpoint, storage.process.pid))
            for label, name in names.items():
                _hits_and_misses(report, label, name, (media / name).read_bytes(), signer, storage, origins, progress)
            _signature_cost(report, bucket, progress)
        finally:
            for server in servers:
                server.stop()


@dataclass(frozen=True)
class Origins:
    disk: NginxServer
    bucket: NginxServer
    never_cached: NginxServer  # the bucket origin's copy whose every request is a miss
    storage: OtherServer


def _hits_and_misses(report: Report, label: str, name: str, expected: bytes, signer: SecureLinkSigner,
                     storage: SeaweedFS, origins: Origins, progress: Callable[[str], None]) -> None:
    disk, bucket, never_cached, weed = origins.disk, origins.bucket, origins.never_cached, origins.storage
    link = signer.sign("/media/" + name, ttl=3600).url
    presigned = storage.client("app").generate_presigned_url("get_object", Params={"Bucket": "media", "Key": name},
                                                             ExpiresIn=3600)[len(storage.endpoint):]
    for server, path, cache in ((disk, link, None), (bucket, link, "MISS"), (bucket, link, "HIT"),
                                (never_cached, link, "BYPASS"), (weed, presigned, None)):
        answer = fetch(server.base_url, path, timeout=30)
        if answer.status != 200 or answer.body != expected or (cache and answer.headers.get("X-Cache-Status") != cache):
            raise RuntimeError(f"s3 {label}: {server.base_url} answered {answer.status}, {len(answer.body)} bytes, "
                               f"cache {answer.headers.get('X-Cache-Status')} (wanted 200, {cache or 'no cache'})")
    targets: dict[str, str] = {DISK: link, HIT: link, MISS: link, PRESIGNED: presigned}
    pairs = PAIRS_20KB if label == "20KB" else BIG_PAIRS
    if label == "20KB":
        targets = {DISK: link, DISK_AGAIN: link, **{k: v for k, v in targets.items() if k != DISK}}
    section = (f"Files in a bucket, {label}: the bucket origin against the disk origin and a presigned GET "
               f"(pinned, {pairs} alternating pairs of {SECONDS} s)")
    progress(f"s3: {label} hits, misses, the disk origin and presigned GETs, {pairs} alternating pairs of {SECONDS} s")
    options = {"servers": {HIT: bucket, MISS: never_cached, PRESIGNED: weed}, "also_counted": {MISS: [weed]},
               "control": (DISK_AGAIN, DISK), "pairs": pairs}
    if label == "20KB":
        paired, rejected = measure_trusted_pairs(disk, targets, progress=lambda message: progress(f"s3: {message}"),
                                                 **options)
    else:
        paired, rejected = measure_pairs(disk, targets, **options), ""
    paired.add_rows(report, section, base=DISK)
    report.target(f"s3 {label} by CPU: bucket origin's cache hit / disk origin's signed link",
                  paired.cpu_ratio(HIT, DISK), 0.90,
                  note=f"{paired.cpu_us(HIT):.1f} µs against {paired.cpu_us(DISK):.1f} µs of worker CPU per request; "
                       f"a miss {paired.cpu_us(MISS):.1f} µs (origin and storage), a presigned GET "
                       f"{paired.cpu_us(PRESIGNED):.1f} µs (storage); {paired.load_text}"
                       + ("" if label == "20KB" else "; no A/A control at this size"),
                  rejected=rejected)
    for scenario in (MISS, PRESIGNED):
        report.add(section, f"{scenario}: all CPU per request / the cache hit's",
                   paired.cpu_us(scenario) / paired.cpu_us(HIT), "x",
                   f"{paired.cpu_us(scenario):.1f} µs against {paired.cpu_us(HIT):.1f} µs (user + system)")


def _signature_cost(report: Report, bucket: NginxServer, progress: Callable[[str], None]) -> None:
    """One SigV4 signature, as the origin's worker computes it for a fetch, with the signing key kept
    (shipped) and derived for every signature (the trap): CPU time in the worker, many signatures a round."""
    section = "What one SigV4 signature costs the bucket origin's worker (CPU time, in the worker)"
    count = BUDGET.count(SIGNATURES, 2000)
    progress(f"s3: {ROUNDS} rounds of {count:,} signatures, the key kept and derived each time")
    assert bucket.bucket is not None
    gate = bucket.bucket.gate
    per_signature: dict[str, list[float]] = {"kept": [], "derived": []}
    for _ in range(ROUNDS):
        for mode in per_signature:
            answer = fetch(bucket.base_url, f"/_bench/sign?mode={mode}&count={count}",
                           headers={"X-Secure-Link-Gate": gate})  # as the cache tier sends it to the signer
            if answer.status != 200:
                raise RuntimeError(f"the signing measurement answered {answer.status}: {answer.body[:200]!r}")
            per_signature[mode].append(float(answer.body))
    kept, derived = statistics.median(per_signature["kept"]), statistics.median(per_signature["derived"])
    report.add(section, "one signature, the signing key kept (shipped)", kept, "µs",
               f"rounds {min(per_signature['kept']):.2f}-{max(per_signature['kept']):.2f} µs")
    report.add(section, "one signature, the signing key derived each time (for comparison)", derived, "µs",
               f"rounds {min(per_signature['derived']):.2f}-{max(per_signature['derived']):.2f} µs; "
               f"the kept key saves {derived - kept:.2f} µs a fetch")
    report.target("s3: one SigV4 signature, worker CPU per fetch", kept, 3.0, higher_is_better=False, unit="µs",
                  note=f"median of {ROUNDS} rounds; deriving the key each time: {derived:.2f} µs")


def _signing_location(storage: SeaweedFS) -> str:
    """A location of the bucket origin that times s3.lua's sign() in the worker (measurement only):
    the signer's variables as secure_link_bucket.conf sets them, the request's gate header as the
    cache tier sends it, the CPU time of ``count`` signatures (the gate's check included)."""
    credentials = storage.credentials["origin"]
    return f"""
location = /_bench/sign {{
    set $secure_link_s3_prefix "/media";
    set $secure_link_s3_host "127.0.0.1:{storage.port}";
    set $secure_link_s3_region "us-east-1";
    set $secure_link_s3_key_id "{credentials.key_id}";
    set $secure_link_s3_secret "{credentials.secret}";
    set $secure_link_s3_uri "";
    set $secure_link_s3_date "";
    set $secure_link_s3_authorization "";
    content_by_lua_block {{
        local s3 = require("secure_link.lua.s3")
        local count = tonumber(ngx.var.arg_count)
        -- Derived: two access key ids in turn, so that each signature derives its key; kept: the
        -- same one each time. Both write the variable, so only the derivation differs.
        local var = ngx.var
        local key_id = var.secure_link_s3_key_id
        local key_ids = {{key_id, var.arg_mode == "derived" and "AKIDOTHER" or key_id}}
        local started = os.clock()
        for i = 1, count do
            var.secure_link_s3_key_id = key_ids[i % 2 + 1]
            s3.sign()
        end
        ngx.print(string.format("%.4f", (os.clock() - started) / count * 1e6))
    }}
}}
"""


def _never_cached(var_dir: Path) -> dict[str, Path]:
    """A copy of the cache snippet that neither answers from the cache nor stores in it."""
    copy = var_dir / "slice_cache-never-cached.conf"
    shipped = (SNIPPETS_DIR / "location" / "slice_cache.conf").read_text()
    copy.write_text(_variant(shipped, "proxy_cache_lock on;", "proxy_cache_bypass 1;\nproxy_no_cache 1;"))
    return {"secure_link/location/slice_cache.conf": copy}
