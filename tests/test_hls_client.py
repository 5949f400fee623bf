"""A real HLS client (Debian's ffmpeg) plays a stream through one directory token or one folder cookie.

ffmpeg writes a master playlist with two variants in subfolders, all URLs relative; then
reads it back through nginx, and through an edge in front of it, with a single directory
link. A copy of the stream whose playlists name every file by its absolute path
(``/media/videos/43/v0/seg000.ts``, which no directory link can carry a token in) plays with
a folder cookie alone, given to ffmpeg with ``-cookies``. The servers' access logs show every
playlist and segment it fetched.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.nginx import NginxServer, running_origin_and_edge
from signing import HMAC_SHA256, Key, KeySet, SecureLinkSigner, generate_secret
from signing.nginx.folder_cookie import COOKIE_NAME
from tests.client import fetch

pytestmark = pytest.mark.nginx

EDGE_ADDRESS = "127.0.0.13"
STREAM = "/media/videos/42/"
ABSOLUTE_STREAM = "/media/videos/43/"  # the same stream, its playlists naming files by absolute path


@dataclass
class HlsSite:
    origin: NginxServer
    edge: NginxServer
    key_set: KeySet
    files: list[str]  # every file of the stream, relative to its folder

    def signer(self, kid: str, **options: object) -> SecureLinkSigner:
        return SecureLinkSigner(self.key_set.with_active(kid), **options)  # type: ignore[arg-type]


def ffmpeg() -> str:
    binary = shutil.which("ffmpeg")
    if binary is None:
        raise RuntimeError("ffmpeg is not installed: run `make test` (it installs Debian's 'ffmpeg')")
    return binary


def make_stream(folder: Path) -> list[str]:
    """Two variants (v0, v1) of 3 one-second segments each, under a master playlist."""
    folder.mkdir(parents=True)
    subprocess.run(
        [ffmpeg(), "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=duration=3:size=160x90:rate=10",
         "-filter_complex", "[0:v]split=2[a][b];[b]scale=80:46[c]", "-map", "[a]", "-map", "[c]",
         "-c:v", "mpeg2video", "-g", "10", "-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod",
         "-master_pl_name", "master.m3u8", "-var_stream_map", "v:0 v:1",
         "-hls_segment_filename", "v%v/seg%03d.ts", "v%v/index.m3u8"],
        cwd=folder, check=True, timeout=60,
    )
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def copy_with_absolute_uris(source: Path, target: Path, url_path: str) -> None:
    """Copy the stream, every URI line of its playlists made root-relative (``url_path`` + file).

    A root-relative URI resolves against whichever server the player asked, origin or edge.
    """
    shutil.copytree(source, target)
    for playlist in target.rglob("*.m3u8"):
        folder = url_path + "".join(part + "/" for part in playlist.parent.relative_to(target).parts)
        lines = [line if not line or line.startswith("#") else folder + line
                 for line in playlist.read_text().splitlines()]
        playlist.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def hls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HlsSite]:
    base = tmp_path_factory.mktemp("hls")
    media = base / "media"
    files = make_stream(media / "videos" / "42")
    copy_with_absolute_uris(media / "videos" / "42", media / "videos" / "43", ABSOLUTE_STREAM)
    (media / "videos" / "4").mkdir()
    key_set = KeySet((Key("k1", generate_secret()), Key("h1", generate_secret(), HMAC_SHA256)))
    with running_origin_and_edge(base, media_root=media, key_set=key_set, edge_address=EDGE_ADDRESS) as (origin, edge):
        yield HlsSite(origin, edge, key_set, files)


def play(url: str, output: Path, *input_options: str) -> subprocess.CompletedProcess[str]:
    """ffmpeg reads the master playlist, every variant and every segment, into one file."""
    return subprocess.run([ffmpeg(), "-nostdin", "-loglevel", "error", "-y", *input_options, "-i", url,
                           "-map", "0", "-c", "copy", "-f", "mpegts", str(output)],
                          capture_output=True, text=True, timeout=60)


def fetched(server: NginxServer, directory_url: str, since: int) -> dict[str, str]:
    """File below the stream folder -> status, from the access log lines of this link after ``since``.

    The log holds the path with the token cut out (``/-/KID,EXPIRES,-/``), never the token,
    so two links of one kid and expiry log alike: only the lines written since are read.
    """
    logged_url = re.sub(r"(/-/[^/]*,)[A-Za-z0-9_-]+/$", r"\1-/", directory_url)
    assert logged_url != directory_url
    return fetched_below(server, logged_url, since)


def fetched_below(server: NginxServer, logged_prefix: str, since: int) -> dict[str, str]:
    """Logged path below ``logged_prefix`` -> status, from the access log lines after ``since``."""
    answers = {}
    for line in server.access_log[since:].splitlines():
        request = line.split('"')[1].split()
        if len(request) >= 2 and request[1].startswith(logged_prefix):
            answers[request[1][len(logged_prefix):]] = line.split('"')[2].split()[0]
    return answers


@pytest.mark.parametrize("kid", ["k1", "h1"])
@pytest.mark.parametrize("through", ["origin", "edge"])
def test_ffmpeg_plays_every_segment_with_one_directory_token(hls, tmp_path, kid, through):
    server = hls.origin if through == "origin" else hls.edge
    directory = hls.signer(kid).sign_directory(STREAM, ttl=300)
    since = len(server.access_log)
    result = play(server.base_url + directory.url_for("master.m3u8"), tmp_path / "out.ts")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.ts").stat().st_size > 10_000
    answers = fetched(server, directory.url, since)  # ffmpeg asks with "Range: bytes=0-": 206 is a full answer
    assert sorted(answers) == hls.files and set(answers.values()) <= {"200", "206"}


@pytest.mark.parametrize("kid", ["k1", "h1"])
@pytest.mark.parametrize("through", ["origin", "edge"])
def test_ffmpeg_fails_on_the_first_request_with_an_expired_or_foreign_token(hls, tmp_path, kid, through):
    server = hls.origin if through == "origin" else hls.edge
    expired = hls.signer(kid, clock=lambda: 1_000_000).sign_directory(STREAM, ttl=60)
    foreign = hls.signer(kid).sign_directory("/media/videos/4/", ttl=300)
    foreign_url = foreign.url.replace("/videos/4/", "/videos/42/")
    # ffmpeg names a 403 and reports a 410 as "4XX Client Error, but not one of 40{0,1,3,4}".
    for url, status, message in ((expired.url, "410", "4XX Client Error"), (foreign_url, "403", "Server returned 403 Forbidden")):
        since = len(server.access_log)
        result = play(server.base_url + url + "master.m3u8", tmp_path / "out.ts")
        assert result.returncode != 0 and message in result.stderr
        assert fetched(server, url, since) == {"master.m3u8": status}  # nothing after the first refusal


def test_file_and_directory_links_of_both_algorithms_share_one_edge_cache_entry(hls):
    segment = "v1/seg001.ts"
    path = STREAM + segment
    links = [hls.signer("k1").sign(path, ttl=300).url, hls.signer("h1").sign(path, ttl=300).url,
             hls.signer("k1").sign_directory(STREAM, ttl=300).url_for(segment),
             hls.signer("h1").sign_directory(STREAM, ttl=301).url_for(segment)]
    before = hls.origin.access_log.count(f"/_edge{path}")
    answers = [fetch(hls.edge.base_url, url) for url in links]
    assert [answer.status for answer in answers] == [200] * 4
    assert len({answer.body for answer in answers}) == 1
    assert hls.origin.access_log.count(f"/_edge{path}") - before <= 1  # one fetch, or none if already cached
    assert [answer.headers["X-Cache-Status"] for answer in answers[1:]] == ["HIT"] * 3


def cookie_option(server: NginxServer, value: str, path: str) -> tuple[str, str]:
    """ffmpeg's ``-cookies`` for ``server``: Set-Cookie lines, each sent only to URLs whose path
    starts with the line's ``path`` (a line without one is never sent) and whose ``host:port``
    ends with its ``domain`` (ffmpeg 5.1 compares the port too: ``domain=127.0.0.1`` is never
    sent to ``127.0.0.1:PORT``). The hls demuxer hands them on to every playlist and segment."""
    return "-cookies", f"{COOKIE_NAME}={value}; path={path}; domain={server.host}:{server.port}"


@pytest.mark.parametrize("kid", ["k1", "h1"])
@pytest.mark.parametrize("through", ["origin", "edge"])
def test_ffmpeg_plays_a_stream_of_absolute_urls_with_the_folder_cookie_alone(hls, tmp_path, kid, through):
    server = hls.origin if through == "origin" else hls.edge
    grant = hls.signer(kid).sign_folder_cookie(ABSOLUTE_STREAM, ttl=300)
    since = len(server.access_log)
    result = play(server.base_url + ABSOLUTE_STREAM + "master.m3u8", tmp_path / "out.ts",
                  *cookie_option(server, grant.cookies[COOKIE_NAME], grant.path))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.ts").stat().st_size > 10_000
    answers = fetched_below(server, ABSOLUTE_STREAM, since)  # every URL plain: no token anywhere
    assert sorted(answers) == hls.files and set(answers.values()) <= {"200", "206"}


@pytest.mark.parametrize("kid", ["k1", "h1"])
@pytest.mark.parametrize("through", ["origin", "edge"])
def test_ffmpeg_fails_on_the_first_request_without_a_folder_cookie_for_the_stream(hls, tmp_path, kid, through):
    server = hls.origin if through == "origin" else hls.edge
    foreign = hls.signer(kid).sign_folder_cookie(STREAM, ttl=300).cookies[COOKIE_NAME]
    expired = hls.signer(kid, clock=lambda: 1_000_000).sign_folder_cookie(ABSOLUTE_STREAM, ttl=60).cookies[COOKIE_NAME]
    # The cookies are given to ffmpeg for all of /media/, so that it sends them: nginx refuses them.
    for options, status, message in (((), "403", "Server returned 403 Forbidden"),
                                     (cookie_option(server, foreign, "/media/"), "403", "Server returned 403 Forbidden"),
                                     (cookie_option(server, expired, "/media/"), "410", "4XX Client Error")):
        since = len(server.access_log)
        result = play(server.base_url + ABSOLUTE_STREAM + "master.m3u8", tmp_path / "out.ts", *options)
        assert result.returncode != 0 and message in result.stderr, (options, result.stderr)
        assert fetched_below(server, ABSOLUTE_STREAM, since) == {"master.m3u8": status}  # nothing after the refusal
