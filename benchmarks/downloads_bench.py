"""Sections 2 and 4: downloads through one nginx with wrk, and the Django worker's memory."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from harness.ports import child_pids, free_port, stop_process
from harness.stack import Stack, start_gunicorn, start_stack
from signing import KeySet
from signing.keys import KEYS_FILE_NAME
from tests.client import fetch

from . import cpu_profile
from .load import CONNECTIONS, WRK_SECONDS, wrk
from .pinned import CONTROL, PAIRS, SECONDS, STATIC, measure_pairs, measure_trusted_pairs
from .results import Report
from .syscalls import add_syscall_rows
from .setup import BenchData

STATIC_CACHED = "unprotected static with the shipped open_file_cache"



def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


PEER_SECRET = "peer-bench-secret"
# The minimal config of django-nginx-secure-links (its README), on the same nginx and file.
PEER_LOCATION = """location /peer/ {{
    secure_link $arg_token,$arg_expires;
    secure_link_md5 "$secure_link_expires$uri %s";
    if ($secure_link = "") {{ return 403; }}
    if ($secure_link = "0") {{ return 410; }}
    alias {root}/;
}}
""" % PEER_SECRET
# Copies of our check that each add one feature to the peer's, for measurement only. Each
# uses the shipped maps (secure_link/http/rules.conf); the last step is the shipped check itself.
_ABLATION_CHECK = """secure_link $arg_md5,$arg_expires;
secure_link_md5 "{expression}";
if ({status} = "") {{ return 403; }}
if ({status} = "0") {{ return 410; }}
{headers}"""
_FIELDS = "$secure_link_expires|$arg_kid|$secure_link_client|$secure_link_disposition|$secure_link_filename|"
# No target rests on the steps (links_bench measures each feature against the A/A control):
# runs of one second keep the whole bench within its ten minutes.
ABLATION_PAIRS = 2
ABLATION_SECONDS = 1
ABLATION = {
    "+ our signed string, key id, link id, fixed secret": ("$secure_link_expires|$arg_kid||||$arg_id|||$uri|{secret}",
                                                           "$secure_link", ""),
    "+ the key id's secret from the keys map": ("$secure_link_expires|$arg_kid||||$arg_id|||$uri|$secure_link_secret",
                                                "$secure_link", ""),
    "+ binding, disposition and name fields": (_FIELDS + "$arg_id|||$uri|$secure_link_secret", "$secure_link", ""),
    "+ the link's own fields checked (id, nb, limit map)": (_FIELDS + "$secure_link_fields$uri|$secure_link_secret",
                                                            "$secure_link", ""),
    "+ algorithm choice and empty-secret refusal": (_FIELDS + "$secure_link_fields$uri|$secure_link_secret",
                                                    "$secure_link_status", ""),
    "+ Cache-Control": (_FIELDS + "$secure_link_fields$uri|$secure_link_secret", "$secure_link_status",
                        'add_header Cache-Control "private, max-age=0, must-revalidate";\n'),
}


def peer_link(path: str, ttl: int = 3600) -> str:
    """A link as django-nginx-secure-links makes it: MD5 of "{expires}{path} {secret}"."""
    expires = int(time.time()) + ttl
    digest = hashlib.md5(f"{expires}{path} {PEER_SECRET}".encode()).digest()
    return f"{path}?token={base64.urlsafe_b64encode(digest).decode().rstrip('=')}&expires={expires}"


def start_download_stack(data: BenchData) -> tuple[Stack, subprocess.Popen[bytes]]:
    """The app stack, plus on the same nginx: unprotected locations (and an A/A copy), the
    peer's minimal config, the ablation copies, static with the shipped open_file_cache and a FileResponse app."""
    streaming_port = free_port()
    root = (data.var_dir / "media").resolve()
    secret = KeySet.from_file(data.var_dir / KEYS_FILE_NAME).active.secret
    extra = (
        f"location /unprotected/ {{ alias {root}/; }}\n"
        f"location /unprotected-again/ {{ alias {root}/; }}\n"  # the A/A control
        f"location /cached/unprotected/ {{ include secure_link/location/open_files.conf; alias {root}/; }}\n"
        + PEER_LOCATION.format(root=root)
        + "".join(f"location /ablation/{index}/ {{\n"
                  + _ABLATION_CHECK.format(expression=expression.format(secret=secret), status=status, headers=headers)
                  + f"alias {root}/;\n}}\n" for index, (expression, status, headers) in enumerate(ABLATION.values()))
        + f"location /filresponse/ {{ proxy_pass http://127.0.0.1:{streaming_port}/; proxy_set_header Host $http_host; }}\n"
    )
    stack = start_stack(data.var_dir, env=data.env, extra_site_directives=extra, workers=2)
    streaming = start_gunicorn({**data.env, "SECURE_LINK_SERVE_WITH_DJANGO": "1"}, streaming_port, workers=2,
                               log=data.var_dir / "gunicorn-streaming.log")
    return stack, streaming


def run(report: Report, data: BenchData, progress: Callable[[str], None]) -> None:
    stack, streaming = start_download_stack(data)
    try:
        _throughput(report, stack, data, progress)
        _features_above_the_peer(report, stack, data, progress)
        _profile(report, stack, data, progress)
        _memory(report, stack, streaming, data, progress)
    finally:
        stop_process(streaming)
        stack.stop()


def _targets_for(stack: Stack, data: BenchData, label: str) -> dict[str, tuple[str, dict[str, str]]]:
    signer = stack.signer()
    auth = {"Authorization": f"Token {data.token}"}
    image_id = data.images[label]
    return {
        "unprotected static": (f"/unprotected/{data.names[label]}", {}),
        "signed link": (signer.sign("/media/" + data.names[label], ttl=3600).url, {}),
        "compatibility view (X-Accel)": (f"/download/image/{image_id}", auth),
        "Django FileResponse": (f"/filresponse/download/image/{image_id}", auth),
    }


def _check(stack: Stack, target: str, headers: dict[str, str], expected: bytes) -> None:
    response = fetch(stack.base_url, target, headers=headers, timeout=60)
    if response.status != 200 or response.body != expected:
        raise RuntimeError(f"{target} answered {response.status} with {len(response.body)} bytes, not the file")


def _throughput(report: Report, stack: Stack, data: BenchData, progress: Callable[[str], None]) -> None:
    for label in ("20KB", "10MB"):
        section = f"Downloads, {label} file (wrk, {CONNECTIONS} connections, {WRK_SECONDS} s each, one nginx, not pinned)"
        expected = (data.var_dir / "media" / data.names[label]).read_bytes()
        rates = {}
        for scenario, (target, headers) in _targets_for(stack, data, label).items():
            _check(stack, target, headers, expected)
            progress(f"downloads: {label} {scenario}")
            nginx_workers = worker_pids(stack.nginx.process)
            cpu_before = cpu_seconds(nginx_workers)
            load = os.getloadavg()[0]
            result = wrk(stack.base_url + target, headers=headers)
            nginx_cpu = (cpu_seconds(nginx_workers) - cpu_before) / max(result.requests, 1) * 1e6
            if result.errors:
                raise RuntimeError(f"{scenario}: {result.errors} failed requests under load")
            rates[scenario] = report.add(section, scenario, result.requests_per_second, "req/s",
                                         f"{result.transfer}/s, mean latency {result.latency}, "
                                         f"nginx CPU {nginx_cpu:.1f} µs/request; load average {load:.2f}").value
        ratio = rates["signed link"] / rates["compatibility view (X-Accel)"]
        if label == "20KB":
            report.target("nginx 20KB: signed link / compatibility view", ratio, 20)
        else:
            report.add(section, "signed link / compatibility view", ratio, "x", "no target: both are nginx sending 10 MB")
        _signed_against_static(report, stack, data, label, progress)


def _signed_against_static(report: Report, stack: Stack, data: BenchData, label: str,
                           progress: Callable[[str], None]) -> None:
    """Signed links against static files, pinned and in alternating pairs, with an A/A control."""
    signer = stack.signer()
    name = data.names[label]
    targets = {
        STATIC: f"/unprotected/{name}",
        CONTROL: f"/unprotected-again/{name}",
        "signed link": signer.sign("/media/" + name, ttl=3600).url,
    }
    if label == "20KB":
        targets["signed link with filename and disposition"] = signer.sign(
            "/media/" + name, ttl=3600, filename="photo é.bmp", disposition="inline").url
        targets["peer's minimal config (django-nginx-secure-links)"] = peer_link(f"/peer/{name}")
        targets[STATIC_CACHED] = f"/cached/unprotected/{name}"  # like for like: the shipped check has this cache
    expected = (data.var_dir / "media" / name).read_bytes()
    for target in targets.values():
        _check(stack, target, {}, expected)
    pairs = PAIRS if label == "20KB" else 4  # 10 MB: three scenarios, four pairs (kernel copies vary more by run)
    progress(f"downloads: {label} signed against static, pinned, {pairs} alternating pairs of {SECONDS} s")
    paired, rejected = measure_trusted_pairs(stack.nginx, targets, progress=lambda message: progress(f"downloads: {label} {message}"),
                                             pairs=pairs)
    section = f"nginx, {label}: signed links against static files (pinned, {pairs} alternating pairs of {SECONDS} s)"
    paired.add_rows(report, section)
    if label == "20KB":
        peer = "peer's minimal config (django-nginx-secure-links)"
        progress("downloads: syscalls per request (strace)")
        add_syscall_rows(report, stack.nginx, targets, base=STATIC)
        for scenario, goal in (("signed link", 0.90), ("signed link with filename and disposition", 0.85)):
            report.target(f"nginx 20KB by CPU: {scenario} / unprotected static", paired.cpu_ratio(scenario, STATIC), goal,
                          note=f"{paired.extra_text(scenario, STATIC)} per request above static, "
                               f"{paired.extra_text(scenario, peer)} above the peer's minimal config "
                               f"({paired.cpu_ratio(peer, STATIC):.2f}x static); like for like, against static "
                               f"with the same open_file_cache: {paired.cpu_ratio(scenario, STATIC_CACHED):.2f}x "
                               f"({paired.extra_text(scenario, STATIC_CACHED)}); {paired.load_text}", rejected=rejected)
        report.target("nginx 20KB by CPU: the signed link's ratio to static behind the peer's minimal config's",
                      paired.cpu_ratio(peer, STATIC) - paired.cpu_ratio("signed link", STATIC), 0.03,
                      higher_is_better=False, unit="",
                      note=f"the peer's {paired.cpu_ratio(peer, STATIC):.2f}x static, ours "
                           f"{paired.cpu_ratio('signed link', STATIC):.2f}x (a negative figure: ahead of it)",
                      rejected=rejected)
        report.add(section, "the peer's minimal config: CPU (user + system) above static", paired.extra_cpu_us(peer, STATIC),
                   "µs", f"{paired.extra_text(peer, STATIC)}; by CPU {paired.cpu_ratio(peer, STATIC):.2f}x")
        for scenario in ("signed link", "signed link with filename and disposition"):
            report.add(section, f"{scenario}: our features' cost above the peer's minimal config",
                       paired.extra_cpu_us(scenario, peer), "µs",
                       f"worker CPU (user + system) per request: {paired.extra_text(scenario, peer)}")
    else:
        median, low, high = paired.median_ratio("signed link", STATIC)
        report.target(f"nginx {label} by CPU: signed link / unprotected static", paired.cpu_ratio("signed link", STATIC),
                      0.98, note=f"{paired.extra_text('signed link', STATIC)} per request above static "
                                 f"(±{1e6 / os.sysconf('SC_CLK_TCK') / (paired.median(STATIC) * paired.seconds):.0f} µs: "
                                 f"/proc counts ticks) of {paired.cpu_us(STATIC):.0f} µs in all; "
                                 f"paired rates {median:.2f}x ({low:.2f}-{high:.2f}), set by wrk at "
                                 f"{paired.busiest_client:.0%} of its core; "
                                 f"{paired.load_text}", rejected=rejected)


def _features_above_the_peer(report: Report, stack: Stack, data: BenchData, progress: Callable[[str], None]) -> None:
    """The peer's minimal check, then ours one feature at a time: what each costs in user CPU."""
    name = data.names["20KB"]
    anywhere = stack.signer(prefix="/")
    targets = {STATIC: f"/unprotected/{name}", "peer's minimal config": peer_link(f"/peer/{name}")}
    for index, step in enumerate(ABLATION):
        targets[step] = anywhere.sign(f"/ablation/{index}/{name}", ttl=3600).url
    targets["+ Content-Disposition, revocation, cookie route, start time, limit: the shipped check"] = (
        stack.signer().sign("/media/" + name, ttl=3600).url)
    targets["shipped check, link with filename and disposition"] = stack.signer().sign(
        "/media/" + name, ttl=3600, filename="photo é.bmp", disposition="inline").url
    expected = (data.var_dir / "media" / name).read_bytes()
    for target in targets.values():
        _check(stack, target, {}, expected)
    progress(f"downloads: the peer's check, then ours one feature at a time ({ABLATION_PAIRS} pairs of "
             f"{ABLATION_SECONDS} s)")
    paired = measure_pairs(stack.nginx, targets, pairs=ABLATION_PAIRS, seconds=ABLATION_SECONDS)
    section = ("nginx, 20KB: what each feature of the check costs (copies of the check that add one feature at a time "
               f"to the peer's, for measurement only; {ABLATION_PAIRS} pairs of {ABLATION_SECONDS} s)")
    previous = STATIC
    for scenario in list(targets)[1:]:
        step_base = list(targets)[-2] if scenario.startswith("shipped check,") else previous
        report.add(section, scenario, paired.extra_cpu_us(scenario, STATIC), "µs",
                   f"CPU (user + system) per request above static ({paired.extra_text(scenario, STATIC)}); this step "
                   f"{paired.extra_text(scenario, step_base)}; by CPU {paired.cpu_ratio(scenario, STATIC):.2f}x")
        previous = scenario if not scenario.startswith("shipped check,") else previous


def _profile(report: Report, stack: Stack, data: BenchData, progress: Callable[[str], None]) -> None:
    section = "nginx, 20KB: where the signed link's extra user CPU goes (perf, one worker, µs per request above static)"
    if not cpu_profile.available():
        report.add(section, "perf is not installed", 0, "", "make bench installs linux-perf")
        return
    name = data.names["20KB"]
    signer = stack.signer()
    urls = {STATIC: f"/unprotected/{name}", "signed link": signer.sign("/media/" + name, ttl=3600).url,
            "signed link with filename and disposition": signer.sign("/media/" + name, ttl=3600, filename="photo é.bmp",
                                                                     disposition="inline").url}
    progress("downloads: perf profiles of static, signed and signed-with-filename requests")
    profiles = {scenario: cpu_profile.user_cpu_by_symbol(stack.nginx, url) for scenario, url in urls.items()}
    for scenario in ("signed link", "signed link with filename and disposition"):
        extra = cpu_profile.difference(profiles[scenario], profiles[STATIC])
        report.add(section, f"{scenario}: all user-space code", sum(extra.values()), "µs")
        for group, value in cpu_profile.by_group(extra).items():
            report.add(section, f"{scenario}: {group}", value, "µs")
        for symbol, value in list(extra.items())[:6]:
            report.add(section, f"{scenario}: function {symbol}", value, "µs")


def worker_pids(master: subprocess.Popen[bytes]) -> list[int]:
    return child_pids(master.pid)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def peak_rss_during(master: subprocess.Popen[bytes], load: Callable[[], object]) -> tuple[int, int]:
    """(largest worker RSS before, largest worker RSS while ``load`` runs), in KiB."""
    before = max(rss_kib(pid) for pid in worker_pids(master))
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            for pid in worker_pids(master):
                try:
                    peak = max(peak, rss_kib(pid))
                except OSError:
                    pass
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        load()
    finally:
        done.set()
        sampler.join()
    return before, peak


def _memory(report: Report, stack: Stack, streaming: subprocess.Popen[bytes], data: BenchData,
            progress: Callable[[str], None]) -> None:
    section = f"Memory: Django worker while {CONNECTIONS} clients download a 100 MB file"
    targets = _targets_for(stack, data, "100MB")
    peaks, befores = {}, {}
    for scenario, master in (("compatibility view (X-Accel)", stack.gunicorn), ("Django FileResponse", streaming)):
        target, headers = targets[scenario]
        progress(f"memory: {scenario}")
        before, peak = peak_rss_during(master, lambda: wrk(stack.base_url + target, seconds=3, headers=headers))
        peaks[scenario], befores[scenario] = peak, before
        report.add(section, f"{scenario}: peak worker RSS", peak / 1024, "MiB", f"{before / 1024:.1f} MiB before the load")
    report.add(section, "FileResponse peak / X-Accel peak", peaks["Django FileResponse"] / peaks["compatibility view (X-Accel)"], "x")
    xaccel = "compatibility view (X-Accel)"
    report.target("Django worker RSS while 16 clients download 100 MB (X-Accel): peak / before",
                  peaks[xaccel] / befores[xaccel], 1.05, higher_is_better=False,
                  note=f"{befores[xaccel] / 1024:.1f} MiB before, {peaks[xaccel] / 1024:.1f} MiB at the peak")
