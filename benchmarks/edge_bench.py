"""Section 5: the edge tier. Cache hits against static files, origin fetches and origin bytes.

One origin nginx and two edges (nginx/edge.conf), each its own process, on loopback.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from harness.nginx import EDGE_CONF, SNIPPETS_DIR, NginxServer, start_edge, start_nginx
from signing import KeySet, SecureLinkSigner
from signing.keys import KEYS_FILE_NAME
from tests.client import fetch

from .budget import BUDGET
from .pinned import CONTROL, PAIRS, SECONDS, STATIC, measure_pairs, measure_trusted_pairs
from .results import Report
from .syscalls import add_syscall_rows
from .setup import BenchData

EDGE_ADDRESSES = ("127.0.0.21", "127.0.0.22")
RANGE_EDGE_ADDRESSES = ("127.0.0.23", "127.0.0.24")
VARIANT_EDGE_ADDRESSES = ("127.0.0.40", "127.0.0.41", "127.0.0.42")  # one per variant of _cost_of_a_hit
SLICE = 1024 * 1024
BIG_FILE = 256 * SLICE
RANGES = 100
DISTINCT_LINKS = 1000
BIG_PAIRS = 2  # 10 MB hits have no target: fewer pairs


def run(report: Report, data: BenchData, progress: Callable[[str], None]) -> None:
    media = data.var_dir / "media"
    key_set = KeySet.from_file(data.var_dir / KEYS_FILE_NAME)
    signer = SecureLinkSigner(key_set)
    origin = start_nginx(data.var_dir / "edge-origin", media_root=media, key_set=key_set, access_log=True,
                         edges=EDGE_ADDRESSES + RANGE_EDGE_ADDRESSES + VARIANT_EDGE_ADDRESSES)
    unprotected = (f"location /unprotected/ {{ alias {media.resolve()}/; }}\n"
                   f"location /unprotected-again/ {{ alias {media.resolve()}/; }}\n")  # the A/A control
    edges: list[NginxServer] = []
    try:
        for index, address in enumerate(EDGE_ADDRESSES):
            edges.append(start_edge(data.var_dir / f"edge-{index}", origin_address=f"127.0.0.1:{origin.port}",
                                    key_set=key_set, bind_address=address, extra_site_directives=unprotected))
        _cache_hits(report, edges[0], signer, data, progress)
        _cost_of_a_hit(report, origin, signer, data, unprotected, progress)
        _origin_fetches(report, origin, edges, signer, progress)
        _range_bytes(report, origin, data, signer, progress)
    finally:
        for edge in edges:
            edge.stop()
        origin.stop()


def _cache_hits(report: Report, edge: NginxServer, signer: SecureLinkSigner, data: BenchData,
                progress: Callable[[str], None]) -> None:
    for label in ("20KB", "10MB"):
        pairs = PAIRS if label == "20KB" else BIG_PAIRS
        section = f"Edge cache hits against static files on the same nginx (pinned, {pairs} alternating pairs of {SECONDS} s)"
        name = data.names[label]
        link = signer.sign("/media/" + name, ttl=3600).url
        warm = fetch(edge.base_url, link, timeout=60)
        again = fetch(edge.base_url, link, timeout=60)
        if warm.status != 200 or again.headers.get("X-Cache-Status") != "HIT":
            raise RuntimeError(f"the edge does not cache {name}: {warm.status}, {again.headers.get('X-Cache-Status')}")
        progress(f"edge: {label} cache hits and static, {pairs} alternating pairs of {SECONDS} s")
        targets = {STATIC: f"/unprotected/{name}", CONTROL: f"/unprotected-again/{name}", "edge cache hit": link}
        if label == "20KB":
            paired, rejected = measure_trusted_pairs(edge, targets, progress=lambda message: progress(f"edge: {message}"))
            add_syscall_rows(report, edge, {STATIC: targets[STATIC], "edge cache hit": link}, base=STATIC, label="edge: ")
            paired.add_rows(report, f"{section}, {label}")
            report.target("edge 20KB by CPU: cache hit / unprotected static from the same edge",
                          paired.cpu_ratio("edge cache hit", STATIC), 0.90,
                          note=f"{paired.extra_text('edge cache hit', STATIC)} per hit above static; "
                               f"where it goes: the variants of edge.conf; {paired.load_text}", rejected=rejected)
        else:
            paired = measure_pairs(edge, targets, pairs=pairs)
            paired.add_rows(report, f"{section}, {label}")
            report.add(f"{section}, {label}", "edge cache hit / static, by CPU", paired.cpu_ratio("edge cache hit", STATIC),
                       "x", "no target")


def _cost_of_a_hit(report: Report, origin: NginxServer, signer: SecureLinkSigner,
                   data: BenchData, unprotected: str, progress: Callable[[str], None]) -> None:
    """Where a 20 KB hit's extra CPU goes: the same edge with one feature taken out at a time."""
    section = "Where a 20 KB edge hit's extra worker CPU goes (variants of edge.conf, for measurement only)"
    shipped = EDGE_CONF.read_text()
    without_check = data.var_dir / "edge-without-check.conf"
    without_check.write_text(_variant(shipped, "include secure_link/location/check.conf;", ""))
    unsliced = _without_slicing(data.var_dir)
    variants: dict[str, dict[str, Path] | None] = {
        "shipped edge.conf": None,
        "without the link check": {"edge.conf": without_check},
        "without slicing": unsliced,
    }
    link = signer.sign("/media/" + data.names["20KB"], ttl=3600).url
    for index, (variant, snippets) in enumerate(variants.items()):
        address = VARIANT_EDGE_ADDRESSES[index]
        edge = start_edge(data.var_dir / f"edge-variant-{index}", origin_address=f"127.0.0.1:{origin.port}",
                          key_set=signer.key_set, bind_address=address, snippets=snippets,
                          extra_site_directives=unprotected + (CHECK_VARIABLES if "without the link check" in variant else ""))
        try:
            fetch(edge.base_url, link)
            progress(f"edge: 20KB hit, {variant}")
            paired = measure_pairs(edge, {"static": f"/unprotected/{data.names['20KB']}", "hit": link}, pairs=2, seconds=2)
        finally:
            edge.stop()
        extra = statistics.median(paired.user_us["hit"]) - statistics.median(paired.user_us["static"])
        report.add(section, f"{variant}: extra user CPU per hit over static", extra, "µs",
                   f"hit / static by CPU {paired.cpu_ratio('hit', 'static'):.2f}x")


def _origin_fetches(report: Report, origin: NginxServer, edges: list[NginxServer], signer: SecureLinkSigner,
                    progress: Callable[[str], None]) -> None:
    links_asked = BUDGET.count(DISTINCT_LINKS, 50)
    section = f"Origin fetches for {links_asked} downloads of one file by distinct links, two cold edges"
    path = "/media/bench/shared.bin"
    (origin_media(origin) / "bench" / "shared.bin").write_bytes(random.randbytes(200_000))
    links = [signer.sign(path, ttl=600 + index, filename=f"copy {index}.bin" if index % 2 else None).url
             for index in range(links_asked)]
    progress(f"edge: {links_asked} distinct links through two edges, 8 at a time")
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda item: fetch(edges[item[0] % 2].base_url, item[1], timeout=30).status,
                                 enumerate(links)))
    if set(statuses) != {200}:
        raise RuntimeError(f"not every download succeeded: {sorted(set(statuses))}")
    fetches = len(edge_fetch_lines(origin, path))
    report.add(section, "downloads answered 200", len(statuses), "requests")
    report.add(section, "requests that reached the origin", fetches, "requests", "one per edge is the floor")
    report.add(section, "issue 9's bound: one origin fetch per edge", 2, "requests",
               "met" if fetches <= 2 else "NOT MET")


def _range_bytes(report: Report, origin: NginxServer, data: BenchData, signer: SecureLinkSigner,
                 progress: Callable[[str], None]) -> None:
    ranges = BUDGET.count(RANGES, 10)
    section = f"Origin bytes for {ranges} Range requests of 1 MB at random offsets in a 256 MB file, cold edges"
    big = origin_media(origin) / "bench" / "big.bin"
    with big.open("wb") as stream:
        for _ in range(BIG_FILE // SLICE):
            stream.write(random.randbytes(SLICE))
    path = "/media/bench/big.bin"
    link = signer.sign(path, ttl=3600).url
    chooser = random.Random(7)
    offsets = [chooser.randrange(0, BIG_FILE - SLICE) for _ in range(ranges)]
    asked = ranges * SLICE
    sent = {}
    for scenario, snippets, address in (
        ("1 MB slices (shipped)", None, RANGE_EDGE_ADDRESSES[0]),
        ("without slicing (comparison)", _without_slicing(data.var_dir),
         RANGE_EDGE_ADDRESSES[1]),
    ):
        logged_before = len(origin.access_log)  # this scenario's fetches: what the origin logs from here
        edge = start_edge(data.var_dir / f"edge-range-{address}", origin_address=f"127.0.0.1:{origin.port}",
                          key_set=signer.key_set, bind_address=address, snippets=snippets)
        try:
            progress(f"edge: {ranges} random 1 MB ranges, {scenario}")
            started = time.monotonic()
            first_latency = 0.0
            for index, offset in enumerate(offsets):
                answer = fetch(edge.base_url, link, headers={"Range": f"bytes={offset}-{offset + SLICE - 1}"}, timeout=120)
                if index == 0:
                    first_latency = time.monotonic() - started
                if answer.status != 206 or len(answer.body) != SLICE:
                    raise RuntimeError(f"{scenario}: range at {offset} answered {answer.status}, {len(answer.body)} bytes")
            elapsed = time.monotonic() - started
        finally:
            edge.stop()
        sent[scenario] = sum(body_bytes(line) for line in edge_fetch_lines(origin, path, since=logged_before))
        report.add(section, f"{scenario}: origin bytes / bytes asked", sent[scenario] / asked, "x",
                   f"{sent[scenario] / 1e6:,.0f} MB sent for {asked / 1e6:,.0f} MB asked; first range "
                   f"{first_latency * 1000:.0f} ms, all {elapsed:.1f} s")
    report.add(section, "issue 9's bound for slices: origin bytes / bytes asked", 2.2, "x",
               "met" if sent["1 MB slices (shipped)"] / asked <= 2.2 else "NOT MET")


def origin_media(origin: NginxServer) -> Path:
    assert origin.media_root is not None
    return origin.media_root


def edge_fetch_lines(origin: NginxServer, path: str, since: int = 0) -> list[str]:
    """The origin's access-log lines of edge fetches of ``path``, from character ``since`` of the log on."""
    return [line for line in origin.access_log[since:].splitlines() if f'"GET /_edge{path}' in line]


def body_bytes(line: str) -> int:
    """$body_bytes_sent of a combined-format access log line."""
    return int(line.split('" ', 1)[1].split()[1])


# The variables check.conf declares (its Lua results), which the rules' maps and the error pages name: declared
# where no request goes in a copy without the check.
CHECK_VARIABLES = ('location = /_never {\n    set $secure_link_hmac "";\n    set $secure_link_opens_at "";\n'
                   '    set $secure_link_client_network "";\n    return 404;\n}\n')


def _variant(text: str, shipped_line: str, replacement: str) -> str:
    """``text`` with one shipped line replaced; fails when the line is gone, so a variant never silently equals the original."""
    if shipped_line not in text:
        raise RuntimeError(f"the shipped config no longer has {shipped_line!r}: update the benchmark's variant")
    return text.replace(shipped_line, replacement)


def _without_slicing(var_dir: Path) -> dict[str, Path]:
    """A copy of the cache snippet without ``slice``: each range request caches the whole file."""
    copy = var_dir / "slice_cache-without-slice.conf"
    copy.write_text(_variant((SNIPPETS_DIR / "location" / "slice_cache.conf").read_text(), "slice 1m;", ""))
    return {"secure_link/location/slice_cache.conf": copy}
