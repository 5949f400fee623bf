"""Where nginx's user CPU goes: ``perf`` samples of one worker while wrk fetches a URL.

Debian's nginx exports its ``ngx_*`` functions (dynamic modules link against them), so perf
names most of them without debug symbols; static functions stay hex addresses and are
summed as "unnamed". Only user-space samples count: kernel time is the same network work
for every location and the noise of the comparison.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from harness.nginx import NginxServer

from .load import wrk
from .pinned import pinned

FREQUENCY = 4999  # samples per second of CPU time
GROUPS = {  # what a symbol does, for the summary; the rest is "other"
    "query argument scans ($arg_NAME)": ("ngx_strlcasestrn", "ngx_http_arg", "ngx_strncasecmp"),
    "variables, maps and complex values": ("ngx_http_complex_value", "ngx_http_get_indexed_variable",
                                           "ngx_http_get_flushed_variable", "ngx_http_script_", "ngx_hash_find",
                                           "ngx_hash_strlow", "ngx_http_map_find", "ngx_pnalloc", "ngx_palloc"),
    "regular expressions": ("pcre2_", "ngx_regex_exec", "ngx_http_regex_exec"),
    "MD5 and base64": ("ngx_md5_", "ngx_decode_base64"),
}


def available() -> bool:
    return shutil.which("perf") is not None


def user_cpu_by_symbol(server: NginxServer, url: str, seconds: int = 3) -> dict[str, float]:
    """µs of worker user CPU per request, by symbol, while wrk fetches ``url``."""
    with tempfile.TemporaryDirectory(prefix="perf-") as folder, pinned(server) as pids:
        data = Path(folder) / "perf.data"
        recorder = subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-F", str(FREQUENCY), "-p", str(pids[1]),
                                     "-o", str(data)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        try:
            run = wrk(server.base_url + url, seconds=seconds)
        finally:
            recorder.send_signal(signal.SIGINT)
            recorder.wait(timeout=60)
        report = subprocess.run(["perf", "report", "-i", str(data), "-n", "--no-children", "--sort", "dso,sym", "-q",
                                 "--stdio"], capture_output=True, text=True, timeout=120).stdout
    per_request = 1e6 / FREQUENCY / max(run.requests, 1)
    symbols: dict[str, float] = defaultdict(float)
    for line in report.splitlines():
        fields = line.split()
        if len(fields) < 5 or fields[3] != "[.]":
            continue  # kernel samples ("[k]") and anything unparsable
        dso, symbol = fields[2], fields[4]
        name = f"{dso}: unnamed (static functions)" if symbol.startswith("0x") else symbol
        symbols[name] += int(fields[1]) * per_request
    return dict(symbols)


def difference(profile: dict[str, float], base: dict[str, float]) -> dict[str, float]:
    """Per-symbol µs per request above ``base``, largest first."""
    names = set(profile) | set(base)
    extra = {name: profile.get(name, 0.0) - base.get(name, 0.0) for name in names}
    return dict(sorted(extra.items(), key=lambda item: -item[1]))


def by_group(extra: dict[str, float]) -> dict[str, float]:
    groups: dict[str, float] = defaultdict(float)
    for name, value in extra.items():
        group = next((g for g, prefixes in GROUPS.items() if name.startswith(prefixes)), "other")
        groups[group] += value
    return dict(sorted(groups.items(), key=lambda item: -item[1]))
