"""Section 6: what each kind of link costs nginx, and what each feature costs an ordinary link.

MD5 and HMAC-SHA256 file links against an unprotected static file (and the HMAC engines
measured side by side: njs, set-misc and the shipped Lua); a directory token against a file
link to the same segment; and the features added after the first link format (link ids,
revocation, start times, download limits, folder cookies, a fleet's includes), each by a copy
of the shipped config without it, all pinned to one core and measured in the same pairs.
"""

from __future__ import annotations

import os
import statistics
import subprocess
from collections.abc import Callable
from pathlib import Path

from harness.nginx import MAIN_CONF, SNIPPETS_DIR, NginxServer, start_nginx
from harness.ports import child_pids, free_port, stop_process
from harness.postgres import PostgresCluster, running_postgres
from harness.stack import app_counter, prepare, start_gunicorn
from signing import HMAC_SHA256, Key, KeySet, SecureLinkSigner, generate_secret
from signing.algorithms import md5_token
from tests.client import fetch

from .budget import BUDGET
from .edge_bench import CHECK_VARIABLES
from .load import rotating_script, wrk
from .pinned import CONTROL, PAIRS, SECONDS, STATIC, cpu_times, measure_pairs, measure_trusted_pairs
from .results import Report
from .syscalls import add_syscall_rows
from .setup import BenchData

FEATURE_BUDGET = 0.5  # µs of worker CPU (user + system) a feature may cost a link that does not use it
SHORT_PAIRS = 2  # figures without a target, and the directory token's (which has a wide margin): fewer pairs
SHORT_SECONDS = 2
HERE = Path(__file__).parent
BEFORE_IDS = HERE / "before_link_ids"
CANDIDATES = HERE / "hmac_candidates"


def run(report: Report, data: BenchData, progress: Callable[[str], None]) -> None:
    media = data.var_dir / "media"
    segment_folder = media / "bench" / "stream" / "720p"
    segment_folder.mkdir(parents=True, exist_ok=True)
    (segment_folder / "seg001.ts").write_bytes(os.urandom(20_000))
    key_set = KeySet((Key("k1", generate_secret()), Key("h1", generate_secret(), HMAC_SHA256)))
    md5, hmac = SecureLinkSigner(key_set.with_active("k1")), SecureLinkSigner(key_set.with_active("h1"))
    unprotected = (f"location /unprotected/ {{ alias {media.resolve()}/; }}\n"
                   f"location /unprotected-again/ {{ alias {media.resolve()}/; }}\n")  # the A/A control
    server = start_nginx(data.var_dir / "links-nginx", media_root=media, key_set=key_set, extra_site_directives=unprotected)
    try:
        _link_kinds(report, server, md5, hmac, data, progress)
        _directory_against_file(report, server, md5, progress)
    finally:
        server.stop()
    _hmac_engines(report, data, key_set, progress)
    _feature_costs(report, data, key_set.with_active("k1"), progress)
    _limited_downloads(report, data, key_set.with_active("k1"), progress)


def _link_kinds(report: Report, server: NginxServer, md5: SecureLinkSigner, hmac: SecureLinkSigner, data: BenchData,
                progress: Callable[[str], None]) -> None:
    name = data.names["20KB"]
    targets = {
        STATIC: f"/unprotected/{name}",
        CONTROL: f"/unprotected-again/{name}",
        "MD5 link": md5.sign(f"/media/{name}", ttl=3600).url,
        "HMAC-SHA256 link": hmac.sign(f"/media/{name}", ttl=3600).url,
    }
    _check_all(server.base_url, targets)
    add_syscall_rows(report, server, targets, base=STATIC, label="link kinds: ")
    progress(f"links: 20KB static, MD5 and HMAC-SHA256 links, {PAIRS} alternating pairs of {SECONDS} s")
    paired, rejected = measure_trusted_pairs(server, targets, progress=lambda message: progress(f"links: {message}"))
    section = f"Link kinds on one nginx, 20 KB file (pinned, {PAIRS} alternating pairs of {SECONDS} s)"
    paired.add_rows(report, section)
    report.target("nginx 20KB by CPU: HMAC-SHA256 link / MD5 link", paired.cpu_ratio("HMAC-SHA256 link", "MD5 link"), 0.90,
                  note=f"{paired.extra_text('HMAC-SHA256 link', 'MD5 link')} per request above the MD5 "
                       f"link; paired rates {paired.median_ratio('HMAC-SHA256 link', 'MD5 link')[0]:.2f}x; the engines "
                       f"side by side: the next section; {paired.load_text}", rejected=rejected)


def _directory_against_file(report: Report, server: NginxServer, md5: SecureLinkSigner,
                            progress: Callable[[str], None]) -> None:
    segment = "/media/bench/stream/720p/seg001.ts"
    file_link, directory = "file link to the segment", "directory token, same segment"
    targets = {
        STATIC: "/unprotected/bench/stream/720p/seg001.ts",
        CONTROL: "/unprotected-again/bench/stream/720p/seg001.ts",
        file_link: md5.sign(segment, ttl=3600).url,
        directory: md5.sign_directory("/media/bench/stream/", ttl=3600).url_for("720p/seg001.ts"),
    }
    _check_all(server.base_url, targets)
    progress(f"links: a segment by file link and by directory token, {SHORT_PAIRS} alternating pairs")
    paired, rejected = measure_trusted_pairs(server, targets, progress=lambda message: progress(f"links: {message}"),
                                             pairs=SHORT_PAIRS, seconds=SHORT_SECONDS)
    section = (f"Directory token against a file link, one 20 KB segment (pinned, {SHORT_PAIRS} alternating pairs of "
               f"{SHORT_SECONDS} s)")
    paired.add_rows(report, section, base=file_link)
    report.target("nginx 20KB by CPU: directory-token segment / file link", paired.cpu_ratio(directory, file_link), 0.95,
                  note=f"{paired.extra_text(directory, file_link)} per request; {paired.load_text}",
                  rejected=rejected)


def _hmac_engines(report: Report, data: BenchData, key_set: KeySet, progress: Callable[[str], None]) -> None:
    """The same HMAC-SHA256 check of the same link in njs, set-misc and the shipped Lua, on one nginx."""
    media = data.var_dir / "media"
    root = media.resolve()
    main_conf = data.var_dir / "nginx-hmac-candidates.conf"
    shipped_modules = "load_module /usr/lib/nginx/modules/ndk_http_module.so;"
    text = MAIN_CONF.read_text()
    if shipped_modules not in text:
        raise RuntimeError("the shipped nginx.conf no longer loads ndk: update the benchmark's candidates")
    main_conf.write_text(text.replace(shipped_modules, shipped_modules + "\n" + (CANDIDATES / "modules.conf").read_text()))
    site = (CANDIDATES / "locations.conf").read_text().replace("MEDIA_ROOT", str(root))
    server = start_nginx(data.var_dir / "links-hmac-candidates", media_root=media, key_set=key_set, download_log=False,
                         extra_site_directives=f"location /unprotected/ {{ alias {root}/; }}\n" + site,
                         main_conf=main_conf, snippets={"secure_link/candidate_njs.js": BEFORE_IDS / "secure_link.js"})
    anywhere = SecureLinkSigner(key_set.with_active("h1"), prefix="/")
    name = data.names["20KB"]
    engines = {"njs 0.7.9 (the check before this change)": "njs", "set-misc set_hmac_sha256 (C, OpenSSL's HMAC())": "set-misc",
               "Lua, LuaJIT FFI to OpenSSL's SHA-256 (shipped)": "lua",
               "Lua, a chunk that returns at once (the call's own cost; checks nothing)": "lua-call"}
    targets = {STATIC: f"/unprotected/{name}"}
    try:
        for engine, location in engines.items():
            link = anywhere.sign(f"/{location}/{name}", ttl=3600).url
            targets[engine] = link
            token = link.split("hmac=")[1].split("&")[0]
            refused = fetch(server.base_url, link.replace(token, token[:5] + ("B" if token[5] != "B" else "C") + token[6:])).status
            if refused != 403 and location != "lua-call":
                raise RuntimeError(f"{engine}: a forged token answered {refused}, not 403")
        _check_all(server.base_url, targets)
        progress(f"links: the HMAC engines side by side, {SHORT_PAIRS} alternating pairs of {SHORT_SECONDS} s")
        paired = measure_pairs(server, targets, pairs=SHORT_PAIRS, seconds=SHORT_SECONDS)
    finally:
        server.stop()
    section = ("HMAC-SHA256 engines: the same check of the same 20 KB link (copies for measurement only; "
               f"{SHORT_PAIRS} pairs of {SHORT_SECONDS} s)")
    for engine in engines:
        report.add(section, f"{engine}: CPU (user + system) above static", paired.extra_cpu_us(engine, STATIC), "µs",
                   f"{paired.extra_text(engine, STATIC)}; by CPU {paired.cpu_ratio(engine, STATIC):.2f}x static; "
                   f"{paired.median(engine):,.0f} req/s")


# Copies of the shipped config without one feature each: (a file below nginx/secure_link/, the
# opening lines of the blocks taken out of it, site directives the copy needs instead). Each
# fails to build when the shipped file lost one of those blocks.
WITHOUT = {
    "revocation (the -f stat)": ("location/check.conf", ("if (-f $secure_link_revoked_file) {\n",), ""),
    "folder cookies (the cookie route)": ("location/check.conf", ('if ($secure_link_status = "cookie") {\n',), ""),
    "download limits (the limit check)": ("location/check.conf", ("if ($secure_link_limit) {\n",), ""),
    "start times (the nb check)": ("location/check.conf", ("if ($secure_link_nb) {\n", "if ($secure_link_opens_at) {\n"),
                                   CHECK_VARIABLES),  # the error pages still name $secure_link_opens_at
    "network bindings (the length check)": ("location/check.conf", ("if ($secure_link_client_length) {\n",), ""),
}
FEATURE_PAIRS = 3  # twelve scenarios
FLEET_KEYS = 5  # of each algorithm, in the fleet copy's includes: more than a rotation holds at once
FLEET_EDGES = 10


def _feature_costs(report: Report, data: BenchData, key_set: KeySet, progress: Callable[[str], None]) -> None:
    """Today's link through the shipped check against copies of it without one feature each:
    locations of one nginx, so that one process's noise is all there is; a fleet's includes
    and the config of before ids need their own nginx (pinned to the same core)."""
    media = data.var_dir / "media"
    root = media.resolve()
    name = data.names["20KB"]
    anywhere = SecureLinkSigner(key_set, prefix="/")
    copies = {"shipped check": ("location/check.conf", None),
              "shipped check again (A/A control)": ("location/check.conf", None)}
    for feature, (file_name, blocks, _) in WITHOUT.items():
        copy = _without(data.var_dir / f"check-without-{len(copies)}.conf", file_name, blocks)
        copies[f"without {feature}"] = (f"location/check-without-{len(copies)}.conf", copy)
    site = "".join(f"location /cost/{index}/ {{ include secure_link/{file_name}; alias {root}/; }}\n"
                   for index, (file_name, _) in enumerate(copies.values()))
    site += "".join(extra for _, _, extra in WITHOUT.values())
    snippets = {f"secure_link/{file_name}": copy for file_name, copy in copies.values() if copy is not None}
    fleet_keys = KeySet((*key_set, *(Key(f"f{index}", generate_secret()) for index in range(FLEET_KEYS - 1)),
                         *(Key(f"g{index}", generate_secret(), HMAC_SHA256) for index in range(FLEET_KEYS))),
                        active_kid=key_set.active.kid)
    targets: dict[str, str | Path] = {}
    for index, scenario in enumerate(copies):
        targets[scenario] = anywhere.sign(f"/cost/{index}/{name}", ttl=3600).url
    key = key_set.active
    expires = anywhere.get_timestamp() + 3600
    without_id = f"/cost/0/{name}"
    targets["a link without an id (as before ids), shipped check"] = (
        f"{without_id}?md5={md5_token(f'{expires}|{key.kid}||||{without_id}|{key.secret}'.encode())}"
        f"&expires={expires}&kid={key.kid}")
    fleet = f"shipped check, a fleet's includes ({2 * FLEET_KEYS} keys, {FLEET_EDGES} trusted edges; its own nginx)"
    targets[fleet] = targets["shipped check"]
    today, whole = "today's link at /media/", "a link of before ids on the config of before ids (its own nginx)"
    path = f"/media/{name}"
    targets[today] = SecureLinkSigner(key_set).sign(path, ttl=3600).url
    targets[whole] = f"{path}?md5={md5_token(f'{expires}|{key.kid}||||{path}|{key.secret}'.encode())}&expires={expires}&kid={key.kid}"
    servers: dict[str, NginxServer] = {}  # the scenarios that another nginx than the shipped one answers
    started: list[NginxServer] = []
    try:
        shipped = start_nginx(data.var_dir / "cost-shipped", media_root=media, key_set=key_set, download_log=False,
                              extra_site_directives=site, snippets=snippets)
        started.append(shipped)
        servers[fleet] = start_nginx(data.var_dir / "cost-fleet", media_root=media, key_set=fleet_keys, download_log=False,
                                     extra_site_directives=site, snippets=snippets,
                                     edges=[f"127.0.1.{index}" for index in range(FLEET_EDGES)])
        started.append(servers[fleet])
        servers[whole] = start_nginx(data.var_dir / "cost-before-ids", media_root=media, key_set=key_set, download_log=False,
                                     snippets={f"secure_link/{n}": BEFORE_IDS / n for n in (
                                         "rules.conf", "check.conf", "errors.conf", "directory.conf", "secure_link.js")},
                                     main_conf=BEFORE_IDS / "nginx.conf", site_template=BEFORE_IDS / "site.conf")
        started.append(servers[whole])
        for scenario, target in targets.items():
            _check_all(servers.get(scenario, shipped).base_url, {scenario: str(target)})
        progress(f"links: what each feature costs today's link, {FEATURE_PAIRS} pairs of {SHORT_SECONDS} s")
        paired = measure_pairs(shipped, targets, pairs=FEATURE_PAIRS, seconds=SHORT_SECONDS, servers=servers)
    finally:
        for server in started:
            server.stop()
    section = (f"What each feature costs an ordinary link, 20 KB (locations of one nginx with copies of check.conf "
               f"without it; pinned, {FEATURE_PAIRS} alternating pairs of {SHORT_SECONDS} s)")
    for scenario in targets:
        report.add(section, scenario, paired.cpu_us(scenario), "µs",
                   f"worker CPU (user {statistics.median(paired.user_us[scenario]):.2f} + system "
                   f"{statistics.median(paired.system_us[scenario]):.2f}) per request; {paired.median(scenario):,.0f} req/s")
    noise = abs(paired.extra_cpu_us("shipped check again (A/A control)", "shipped check"))
    costs = {"link ids (the id field)": paired.extra_cpu_us("shipped check",
                                                            "a link without an id (as before ids), shipped check")}
    for feature in WITHOUT:
        costs[feature] = paired.extra_cpu_us("shipped check", f"without {feature}")
    costs[f"a fleet's includes ({2 * FLEET_KEYS} keys, {FLEET_EDGES} edges) over one key (two nginx)"] = (
        paired.extra_cpu_us(fleet, "shipped check"))

    def verdict(cost: float) -> str:
        """Within the budget, over it by more than the A/A control's own difference, or neither."""
        if cost <= FEATURE_BUDGET:
            return "met"
        return "NOT MET" if cost - noise > FEATURE_BUDGET else f"cannot resolve (within the A/A control's {noise:.2f} µs)"

    for feature, cost in costs.items():
        report.add(section, f"cost of {feature}", cost, "µs",
                   f"budget {FEATURE_BUDGET} µs: {verdict(cost)}; A/A control {noise:.2f} µs")
    worst = max(costs, key=lambda feature: costs[feature])
    unresolved = verdict(costs[worst]).startswith("cannot")
    report.target("nginx 20KB: the costliest feature's extra CPU (user + system) per ordinary link", costs[worst],
                  FEATURE_BUDGET, higher_is_better=False, unit=" µs",
                  note=f"{worst}; every feature: the section 'What each feature costs'; A/A control {noise:.2f} µs",
                  unresolved=f"over the budget by less than the A/A control's {noise:.2f} µs" if unresolved else "")
    report.add(section, "every feature since the first format: today's link over a link of before ids on its config",
               paired.extra_cpu_us(today, whole), "µs", f"{paired.extra_text(today, whole)}; two nginx; link ids, "
               "start times, limits, revocation, cookies")


LIMITED_LINKS = 100_000  # each asked a few times per run, far below its limit
CONCURRENT_LIMITED = 32  # the concurrency of the counter's latency figures
LIMITED_PAIRS = 2  # a ratio near 7x needs no more to resolve it; the bench stays within its 10 minutes
LATENCY_SECONDS = 2


def _limited_downloads(report: Report, data: BenchData, key_set: KeySet, progress: Callable[[str], None]) -> None:
    """A download-limited link's download against an ordinary link, with the counter the shipped
    origin asks (two gunicorn workers on a PostgreSQL cluster started here): the origin nginx's CPU
    per request (pinned pairs), the app's and PostgreSQL's CPU per limited download, the latency of
    32 concurrent limited downloads against ordinary ones, and the download log's cost."""
    media = data.var_dir / "media"
    signer = SecureLinkSigner(key_set)
    path = f"/media/{data.names['20KB']}"
    scripts = data.var_dir / "limited-links"
    scripts.mkdir(exist_ok=True)
    limited = [signer.sign(path, ttl=3600, max_downloads=1000).url for _ in range(BUDGET.count(LIMITED_LINKS, 1000))]
    ordinary, counted = "link with an id", "download-limited link (100,000 of them in turn)"
    targets: dict[str, str | Path] = {ordinary: signer.sign(path, ttl=3600).url, counted: rotating_script(scripts, limited)}
    section = (f"Download limits and the download log, 20 KB file (pinned, {LIMITED_PAIRS} alternating pairs of "
               f"{SHORT_SECONDS} s; limited links counted by two gunicorn workers on PostgreSQL)")
    progress("links: download limits: PostgreSQL and the app's counter")
    with running_postgres() as postgres:
        app: subprocess.Popen[bytes] | None = None
        try:
            var = data.var_dir / "counter"
            env = prepare(var, database_url=postgres.create_database("bench_counter"), static=False)
            app_port = free_port()
            app = start_gunicorn(env, app_port, workers=2, log=var / "gunicorn.log")
            counter = app_counter(var, [app_port])
            for with_log in (False, True):
                server = start_nginx(data.var_dir / f"links-control-{int(with_log)}", media_root=media, key_set=key_set,
                                     download_log=with_log, counter=counter)
                try:
                    _check_all(server.base_url, {ordinary: str(targets[ordinary])})
                    if fetch(server.base_url, limited[0]).status != 200:
                        raise RuntimeError("a download-limited link was refused")
                    measured = targets if not with_log else {ordinary: targets[ordinary]}
                    progress(f"links: download limits{', with the download log' if with_log else ''}, {LIMITED_PAIRS} pairs")
                    paired = measure_pairs(server, measured, pairs=LIMITED_PAIRS, seconds=SHORT_SECONDS)
                    if not with_log:
                        add_syscall_rows(report, server, {ordinary: str(targets[ordinary]),
                                                          "download-limited link": limited[:BUDGET.count(1000, 200)]},
                                         base=ordinary, label="counted at the origin: ")
                        behind = _behind_the_origin(server, app, postgres, targets[counted], str(targets[ordinary]))
                finally:
                    server.stop()
                for scenario in measured:
                    report.add(section, f"{scenario}{', download log on' if with_log else ''}", paired.median(scenario),
                               "req/s", f"origin worker user {statistics.median(paired.user_us[scenario]):.2f} µs + system "
                                        f"{statistics.median(paired.system_us[scenario]):.2f} µs per request")
                if not with_log:
                    ratio = paired.cpu_us(counted) / paired.cpu_us(ordinary)
                    report.add(section, "download-limited link / link with an id, origin worker CPU (user + system) per "
                               "request", ratio, "x", "one HTTP request to the counter from Lua (a new connection each: "
                               "gunicorn's sync workers keep none), and its answer")
                    app_us, database_us, latencies = behind
                    report.add(section, "the counter's CPU per limited download: gunicorn (user + system)", app_us, "µs",
                               "the WSGI fast path (counter_http) and two statements; never paid by an ordinary link")
                    report.add(section, "the counter's CPU per limited download: PostgreSQL (user + system)", database_us,
                               "µs", "one read (revocation, retry, credit) and the upsert")
                    for scenario, distribution in latencies.items():
                        report.add(section, f"latency of {CONCURRENT_LIMITED} concurrent {scenario}s, p50 / p99",
                                   distribution.get(50, 0.0), "ms",
                                   f"p99 {distribution.get(99, 0.0):.2f} ms (wrk --latency, one run; the counter's share is "
                                   "the difference)")
                    without_log = paired.cpu_us(ordinary)
                else:
                    report.add(section, "the download log's cost per link request", paired.cpu_us(ordinary) - without_log,
                               "µs", "worker CPU (user + system): one JSON line into a 64 KB buffer (flush=1s); two "
                                     "nginx, so within their noise")
        finally:
            if app is not None:
                stop_process(app)


def _behind_the_origin(server: NginxServer, app: subprocess.Popen[bytes], postgres: PostgresCluster,
                       limited_script: str | Path, ordinary_target: str) -> tuple[float, float, dict[str, dict[int, float]]]:
    """The app's and PostgreSQL's CPU µs per limited download (one wrk run of limited links), and the
    latency distribution of 32 concurrent limited and ordinary downloads."""
    app_pids, database_pids = _process_tree(app.pid), _process_tree(postgres.process.pid)
    app_before, database_before = sum(cpu_times(app_pids)), sum(cpu_times(database_pids))
    run = wrk(server.base_url + "/", script=Path(limited_script), connections=CONCURRENT_LIMITED, percentiles=True,
              seconds=LATENCY_SECONDS)
    app_seconds, database_seconds = sum(cpu_times(app_pids)) - app_before, sum(cpu_times(database_pids)) - database_before
    if run.errors:
        raise RuntimeError(f"{run.errors} limited downloads failed under {CONCURRENT_LIMITED} connections")
    ordinary = wrk(server.base_url + ordinary_target, connections=CONCURRENT_LIMITED, percentiles=True,
                   seconds=LATENCY_SECONDS)
    requests = max(run.requests, 1)
    return (app_seconds / requests * 1e6, database_seconds / requests * 1e6,
            {"limited download": run.percentiles, "ordinary download": ordinary.percentiles})


def _process_tree(pid: int) -> list[int]:
    """``pid`` and every process below it, as /proc lists them now."""
    found, pending = [], [pid]
    while pending:
        found.append(current := pending.pop())
        pending += child_pids(current)
    return found


def _without(copy: Path, file_name: str, blocks: tuple[str, ...]) -> Path:
    """A copy of a file below nginx/secure_link/ without the blocks that open with these lines
    (up to their closing brace at the start of a line); fails when the shipped file lost one."""
    text = (SNIPPETS_DIR / file_name).read_text()
    for opening in blocks:
        if opening not in text:
            raise RuntimeError(f"{file_name} no longer has {opening!r}: update the benchmark's copy")
        start = text.index(opening)
        text = text[:start] + text[text.index("\n}\n", start) + 3:]
    copy.write_text(text)
    return copy


def _check_all(base_url: str, targets: dict[str, str]) -> None:
    for scenario, target in targets.items():
        status = fetch(base_url, target).status
        if status != 200:
            raise RuntimeError(f"{scenario}: {target} answered {status}")
