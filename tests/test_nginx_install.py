"""signing.nginx.install: what the installer writes into nginx's config folder, and the site templates.

Real nginx runs what it writes in every nginx test (the harness lays out each run folder with it),
under Debian's layout in tests/test_package.py; here, the files, their modes and the refusals.
"""

from __future__ import annotations

import re
import stat

import pytest

from signing import HMAC_SHA256, Key, KeySet, generate_secret
from signing.algorithms import AKAMAI
from signing.buckets import Bucket, Credentials
from signing.nginx.install import (
    OriginBucket,
    config_value,
    include_lines,
    install,
    install_report,
    render_template,
    shipped_folder,
)

KEYS = KeySet((Key("k1", generate_secret()), Key("h1", generate_secret(), HMAC_SHA256)), "k1")


def test_install_writes_the_folder_the_role_files_the_keys_and_an_absolute_lua_path(tmp_path):
    written = install(tmp_path / "etc", KEYS)
    etc = (tmp_path / "etc").resolve()
    assert sorted(path.name for path in written) == ["edge.conf", "secure_link", "secure_link.conf",
                                                     "secure_link_counter.conf",
                                                     "secure_link_hmac_keys.conf", "secure_link_keys.conf",
                                                     "secure_link_lua.conf", "secure_link_s3.conf"]
    shipped = shipped_folder() / "secure_link"
    for source in shipped.rglob("*"):
        if source.is_file():
            assert (etc / "secure_link" / source.relative_to(shipped)).read_bytes() == source.read_bytes()
    for keys in ("secure_link_keys.conf", "secure_link_hmac_keys.conf"):
        assert stat.S_IMODE((etc / keys).stat().st_mode) == 0o600
    lua = (etc / "secure_link_lua.conf").read_text()
    assert f'lua_package_path "{etc}/?.lua;;";' in lua
    assert f'include "{etc}/secure_link/lua/package_path.conf";' in lua  # nginx -t fails when it leads nowhere


BUCKET = Bucket.parse("s3://media?endpoint=https://s3.eu-west-1.amazonaws.com&region=eu-west-1&addressing=virtual")
ORIGIN_CREDENTIALS = Credentials("AKIAORIGINREADONLY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")


def test_a_bucket_origin_gets_its_bucket_conf_private_with_its_own_read_only_credentials(tmp_path):
    (tmp_path / "ca.crt").write_text("a CA bundle\n")
    origin = OriginBucket(BUCKET, ORIGIN_CREDENTIALS, tmp_path / "cache", tmp_path / "s3.sock",
                          ca_file=tmp_path / "ca.crt")
    written = install(tmp_path / "etc", KEYS, bucket=origin)
    conf = tmp_path / "etc" / "secure_link_bucket.conf"
    assert conf.resolve() in written
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600
    text = conf.read_text()
    assert "server s3.eu-west-1.amazonaws.com:443;" in text  # the port spelled out
    assert 'set $secure_link_s3_host "media.s3.eu-west-1.amazonaws.com";' in text  # virtual-hosted style
    assert 'set $secure_link_s3_prefix "";' in text and 'set $secure_link_s3_region "eu-west-1";' in text
    assert f'set $secure_link_s3_secret "{ORIGIN_CREDENTIALS.secret}";' in text
    assert f"listen unix:{tmp_path / 's3.sock'};" in text and "access_log off;" in text
    assert len(re.findall(r'default "[^"]+";', text)) == 1  # the gate value, in this 0600 file alone
    report = install_report(tmp_path / "etc", KEYS, role="origin", bucket=origin)
    assert "include secure_link/http/origin_s3.conf;" in report and "include secure_link_s3.conf;" in report
    assert "media_root" not in report  # the files are not on this host
    assert ORIGIN_CREDENTIALS.key_id in report and ORIGIN_CREDENTIALS.secret not in report
    assert ORIGIN_CREDENTIALS.secret not in repr(origin)


def test_an_https_bucket_is_verified_with_the_ca_file_and_a_missing_one_writes_nothing(tmp_path):
    ca = tmp_path / "ca.crt"
    ca.write_text("a CA bundle\n")
    origin = OriginBucket(BUCKET, ORIGIN_CREDENTIALS, tmp_path / "cache", tmp_path / "s3.sock", freshness=30, ca_file=ca)
    text = origin.render()
    for line in ("proxy_ssl_server_name on;", "proxy_ssl_name media.s3.eu-west-1.amazonaws.com;",
                 "proxy_ssl_verify on;", f"proxy_ssl_trusted_certificate {ca};",
                 'set $secure_link_s3_freshness "30";'):
        assert line in text
    gates = {re.search(r'default "([^"]+)";', OriginBucket(BUCKET, ORIGIN_CREDENTIALS, tmp_path, tmp_path / "s",
                                                            ca_file=ca).render()).group(1) for _ in range(2)}
    assert len(gates) == 2 and all(len(gate) >= 40 for gate in gates)  # a new random gate each install
    missing = OriginBucket(BUCKET, ORIGIN_CREDENTIALS, tmp_path, tmp_path / "s", ca_file=tmp_path / "none.crt")
    with pytest.raises(ValueError, match="CA certificates file .* does not exist"):
        install(tmp_path / "etc", KEYS, bucket=missing)
    assert not (tmp_path / "etc").exists()  # refused before anything is written
    with pytest.raises(ValueError, match="freshness bound must be 1 to 86400"):
        OriginBucket(BUCKET, ORIGIN_CREDENTIALS, tmp_path, tmp_path / "s", freshness=0, ca_file=ca).render()


def test_a_path_style_bucket_keeps_its_name_in_the_path_and_the_port_in_the_host(tmp_path):
    bucket = Bucket.parse("s3://media?endpoint=http://127.0.0.1:8333")
    text = OriginBucket(bucket, ORIGIN_CREDENTIALS, tmp_path, tmp_path / "s").render()
    assert 'set $secure_link_s3_host "127.0.0.1:8333";' in text and 'set $secure_link_s3_prefix "/media";' in text
    assert 'set $secure_link_s3_scheme "http";' in text and "server 127.0.0.1:8333;" in text


def test_installing_again_replaces_the_folder_whole(tmp_path):
    install(tmp_path, KEYS)
    (tmp_path / "secure_link" / "stale.conf").write_text("# from an older release\n")
    install(tmp_path, KeySet((Key("k2", generate_secret()),)))
    assert not (tmp_path / "secure_link" / "stale.conf").exists()
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".")]  # no staging left behind
    assert '"k2"' in (tmp_path / "secure_link_keys.conf").read_text()
    assert '"h1"' not in (tmp_path / "secure_link_hmac_keys.conf").read_text()


def test_a_cdn_key_never_reaches_nginx(tmp_path):
    with_cdn = KeySet((*KEYS, Key("ak1", "ab" * 16, AKAMAI)), "k1")
    install(tmp_path, with_cdn)
    assert "ak1" not in (tmp_path / "secure_link_keys.conf").read_text() + (tmp_path / "secure_link_hmac_keys.conf").read_text()


@pytest.mark.parametrize("folder", ['/etc/ng"inx', "/etc/$nginx", "/etc/my nginx", "/etc/ng;inx"])
def test_a_folder_nginx_cannot_hold_in_quotes_is_refused(tmp_path, folder):
    with pytest.raises(ValueError, match="cannot hold"):
        config_value(folder, what="the config folder")


def test_the_printed_lines_name_this_hosts_paths():
    origin = include_lines("origin", media_root="/srv/app/media", state_root="/srv/app/var/state")
    assert "include secure_link/http/origin.conf;" in origin and "include secure_link.conf;" in origin
    assert 'set $secure_link_media_root "/srv/app/media";' in origin
    assert 'set $secure_link_state_root "/srv/app/var/state";' in origin
    assert "secure_link;" in origin and "combined" in origin  # the safe log format, and why
    edge = include_lines("edge", state_root="/var/lib/secure_link")
    assert "include secure_link/http/edge.conf;" in edge and "include edge.conf;" in edge and "media_root" not in edge


TEMPLATE = "upstream app {\n    server @APP@;  # the app\n}\nserver {\n    @LISTEN@  # one line each\n    @EXTRA@\n}\n"


def test_a_template_takes_a_value_inline_and_lines_on_a_line_of_their_own(tmp_path):
    template = tmp_path / "site.conf"
    template.write_text(TEMPLATE)
    site = render_template(template, {"APP": "127.0.0.1:8000", "LISTEN": ["listen 1.2.3.4:80;", "listen [::1]:80;"],
                                      "EXTRA": []})
    assert site == ("upstream app {\n    server 127.0.0.1:8000;  # the app\n}\nserver {\n    listen 1.2.3.4:80;\n"
                    "    listen [::1]:80;\n}\n")


@pytest.mark.parametrize("values, message", [
    ({"LISTEN": [], "EXTRA": []}, "needs a value for @APP@"),
    ({"APP": "x", "LISTEN": [], "EXTRA": [], "MEDIA": "y"}, "has no placeholder for MEDIA"),
    ({"APP": ["x"], "LISTEN": [], "EXTRA": []}, "give it one value"),
    ({"APP": "x", "LISTEN": "listen 80;", "EXTRA": []}, "give it a list of lines"),
    ({"APP": "x; evil", "LISTEN": [], "EXTRA": []}, "cannot hold"),
])
def test_a_template_and_its_caller_cannot_drift_apart(tmp_path, values, message):
    template = tmp_path / "site.conf"
    template.write_text(TEMPLATE)
    with pytest.raises(ValueError, match=message):
        render_template(template, values)


def test_the_shipped_templates_name_every_placeholder_the_harness_fills():
    from harness.nginx import EDGE, ORIGIN, ORIGIN_S3

    for role, extra in ((ORIGIN, {"MEDIA_ROOT": "/m", "EDGES": []}), (ORIGIN_S3, {"EDGES": []}),
                        (EDGE, {"CACHE_DIR": "/c"})):
        site = render_template(role.template, {role.upstream_placeholder: ["server 127.0.0.1:1;"], "LISTEN": [], "ACCESS_LOGS": [],
                                               "STATE_ROOT": "/s", "EXTRA": [], **extra})
        assert not [line for line in site.splitlines() if re.search(r"@[A-Z_]+@", line.partition("#")[0])]


def test_the_counter_include_names_the_app_servers_and_an_install_without_them_keeps_it(tmp_path):
    from signing.nginx.counter import COUNTER_INCLUDE, DownloadCounter

    etc = tmp_path / "etc"
    install(etc, KEYS)
    assert 'default "";' in (etc / COUNTER_INCLUDE).read_text()  # none yet: limited links get 503
    install(etc, KEYS, counter=DownloadCounter.of(["http://10.0.0.5:8000", "http://[fd00::5]:8000"], "fleet"))
    written = (etc / COUNTER_INCLUDE).read_text()
    assert 'default "http://10.0.0.5:8000 http://[fd00::5]:8000";' in written
    assert (etc / COUNTER_INCLUDE).stat().st_mode & 0o777 == 0o600
    install(etc, KEYS)  # again, without --counter (as the Lua path's message suggests)
    assert (etc / COUNTER_INCLUDE).read_text() == written
