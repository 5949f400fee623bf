"""Management commands for operators: sign_url, secure_link_keys, rotate_key (in process)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from signing.django.conf import link_settings
from signing.django.management.commands import rotate_key
from signing import HMAC_SHA256, KeySet
from tests.app_fixtures import verify_url

REPO = Path(__file__).resolve().parent.parent


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue().strip()


class TestSignUrl:
    def test_prints_an_absolute_url_for_a_relative_path(self, user, make_image):
        image = make_image(user, "c.png")
        url = run("sign_url", image.file.name, "--base-url", "https://dl.example.com")
        assert url.startswith(f"https://dl.example.com/media/{image.file.name}?md5=")
        verify_url(url)

    def test_accepts_a_media_url_path_and_prints_json(self, user, make_image):
        image = make_image(user)
        body = json.loads(run("sign_url", f"/media/{image.file.name}", "--ttl", "60", "--json", "--base-url", "http://h"))
        assert set(body) == {"url", "id", "expires_at", "kid", "not_before", "max_downloads"} and body["kid"] == "k2"
        assert verify_url(body["url"]).expires - 60 <= int(time.time())

    def test_a_limit_and_a_start_are_signed_into_the_link(self, user, make_image):
        image = make_image(user)
        body = json.loads(run("sign_url", image.file.name, "--max-downloads", "2", "--not-before",
                              "2026-01-01T00:00:00Z", "--json", "--base-url", "http://h"))
        assert (body["max_downloads"], body["not_before"]) == (2, "2026-01-01T00:00:00Z")
        verified = verify_url(body["url"])
        assert (verified.link_id, verified.max_downloads, verified.not_before) == (body["id"], 2, 1767225600)
        with pytest.raises(CommandError, match="neither Unix seconds nor ISO 8601"):
            run("sign_url", image.file.name, "--not-before", "soon")

    def test_options_are_signed(self, user, make_image):
        image = make_image(user)
        url = run("sign_url", image.file.name, "--filename", "x y.png", "--inline", "--bind-ip", "192.0.2.1", "--base-url", "http://h")
        verified = verify_url(url, remote_addr="192.0.2.1")
        assert (verified.filename, verified.disposition) == ("x y.png", "inline")

    def test_defaults_to_the_origin_url_and_asks_for_one_without_it(self, user, make_image, settings):
        image = make_image(user)
        with pytest.raises(CommandError, match="pass --base-url"):
            run("sign_url", image.file.name)
        settings.SECURE_LINK = {**settings.SECURE_LINK, "ORIGIN_URL": "http://127.0.0.1:8080"}
        assert run("sign_url", image.file.name).startswith("http://127.0.0.1:8080/media/")

    @pytest.mark.parametrize(
        "args, message",
        [
            (["images/missing.png"], "no file"),
            (["/etc/passwd"], "neither relative to MEDIA_ROOT"),
            (["../outside.png", "--allow-missing"], "'..' segment"),
            (["images/x.png", "--allow-missing", "--ttl", "0"], "--ttl must be between 1"),
            (["images/x.png", "--allow-missing", "--bind-ip", "nope"], "does not appear to be an IPv4 or IPv6 address"),
        ],
    )
    def test_errors_are_clear(self, db, args, message):
        with pytest.raises(CommandError, match=message):
            run("sign_url", *args)

    def test_allow_missing_signs_anyway(self, db):
        verify_url(run("sign_url", "images/later.png", "--allow-missing", "--base-url", "http://h"))


class TestSecureLinkKeys:
    def test_writes_the_nginx_include_0600_and_prints_no_secret(self, tmp_path, settings):
        message = run("secure_link_keys", "--output", str(tmp_path))
        output = tmp_path / "secure_link_keys.conf"
        assert "k1, k2" in message and "1111" not in message
        assert stat.S_IMODE(output.stat().st_mode) == 0o600
        assert output.read_text().splitlines()[1:] == [f'"{key.kid}" "{key.secret}";' for key in settings.SECURE_LINK["KEYS"]]

    def test_check_detects_drift(self, tmp_path):
        output = tmp_path / "secure_link_keys.conf"
        run("secure_link_keys", "--output", str(output))
        assert "match the settings' keys" in run("secure_link_keys", "--output", str(output), "--check")
        output.write_text(output.read_text().replace("1111", "2222"))
        with pytest.raises(CommandError, match="differs from the settings"):
            run("secure_link_keys", "--output", str(output), "--check")

    @pytest.mark.parametrize("name", ["keys.conf", "nginx/secure_link.conf"])
    def test_a_file_of_another_name_is_refused_with_one_line_naming_the_folder(self, tmp_path, name):
        with pytest.raises(CommandError) as refused:
            run("secure_link_keys", "--output", str(tmp_path / name))
        message = str(refused.value)
        assert "\n" not in message and message.endswith(f"give their folder instead, {(tmp_path / name).parent}")
        assert "secure_link_keys.conf and secure_link_hmac_keys.conf" in message
        assert not list(tmp_path.rglob("*.conf"))


class TestRotateKey:
    @pytest.fixture
    def keys_file(self, tmp_path, monkeypatch) -> Path:
        path = tmp_path / "secure_link.keys"
        path.write_text("old=" + "o" * 43 + "\n")
        monkeypatch.setattr(rotate_key, "now", lambda: 1_000_000)
        return path

    def rotate(self, keys_file: Path, *args: str) -> str:
        return run("rotate_key", *args, "--keys-file", str(keys_file))

    def test_add_does_not_change_the_signing_key(self, keys_file):
        self.rotate(keys_file, "add", "new")
        key_set = KeySet.from_file(keys_file)
        assert list(key_set.kids) == ["old", "new"] and key_set.active.kid == "old"
        assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600

    def test_activate_records_when(self, keys_file):
        self.rotate(keys_file, "add", "new")
        self.rotate(keys_file, "activate", "new", "--force")  # no fleet here: tests/test_fleet.py has one
        key_set = KeySet.from_file(keys_file)
        assert (key_set.active.kid, key_set.active_since) == ("new", 1_000_000)

    def test_retire_is_refused_while_links_may_live(self, keys_file, settings, monkeypatch):
        self.rotate(keys_file, "add", "new")
        self.rotate(keys_file, "activate", "new", "--force")  # no fleet here: tests/test_fleet.py has one
        lifetime = link_settings().old_key_lifetime  # pick-up bound + MAX_TTL (+ bucket)
        with pytest.raises(CommandError, match="may live until"):
            self.rotate(keys_file, "retire", "old")
        monkeypatch.setattr(rotate_key, "now", lambda: 1_000_000 + lifetime + 1)
        assert "may be retired" in self.rotate(keys_file, "status")
        self.rotate(keys_file, "retire", "old")
        assert list(KeySet.from_file(keys_file).kids) == ["new"]

    def test_retire_without_a_recorded_activation_needs_force(self, keys_file):
        self.rotate(keys_file, "add", "new")
        keys_file.write_text(keys_file.read_text().replace("active: old", "active: new"))
        with pytest.raises(CommandError, match="unknown time"):
            self.rotate(keys_file, "retire", "old")
        self.rotate(keys_file, "retire", "old", "--force")
        assert list(KeySet.from_file(keys_file).kids) == ["new"]

    def test_forced_retire_right_after_activate_waits_for_the_app_servers(self, keys_file, monkeypatch):
        self.rotate(keys_file, "add", "new")
        self.rotate(keys_file, "activate", "new", "--force")  # no fleet here: tests/test_fleet.py has one
        slept: list[float] = []
        monkeypatch.setattr(rotate_key.time, "sleep", slept.append)
        output = self.rotate(keys_file, "retire", "old", "--force")
        assert slept == [2.0] and "waiting 2.0 s for the app servers to sign with new" in output

    def test_a_retired_key_id_is_never_given_out_again(self, tmp_path, monkeypatch):
        keys_file = tmp_path / "secure_link.keys"
        keys_file.write_text("k1=" + "o" * 43 + "\n")
        monkeypatch.setattr(rotate_key, "now", lambda: 1_000_000)
        monkeypatch.setattr(rotate_key.time, "sleep", lambda seconds: None)
        self.rotate(keys_file, "add")
        self.rotate(keys_file, "activate", "k2", "--force")
        self.rotate(keys_file, "retire", "k1", "--force", "--no-wait")
        self.rotate(keys_file, "add")
        key_set = KeySet.from_file(keys_file)
        assert key_set.kids == ("k2", "k3") and key_set.retired_kids == ("k1",)
        with pytest.raises(CommandError, match="key id 'k1' was retired and is never used again .*e.g. k4"):
            self.rotate(keys_file, "add", "k1")
        assert "retired, never used again: k1" in self.rotate(keys_file, "status")

    def test_activate_refuses_when_no_verifier_is_known(self, keys_file):
        self.rotate(keys_file, "add", "new")
        with pytest.raises(CommandError, match="no verifiers are known, so nothing proves they accept the new key"):
            self.rotate(keys_file, "activate", "new")
        assert KeySet.from_file(keys_file).active.kid == "old"
        assert "--force: no verifiers are known" in self.rotate(keys_file, "activate", "new", "--force")

    @pytest.mark.parametrize(
        "args, message",
        [
            (["retire", "old"], "signs new links: activate another key first"),
            (["activate", "old"], "already signs"),
            (["activate", "nope"], "no key 'nope'"),
            (["add", "old"], "exists already"),
            (["add", "Bad Id"], "is not valid"),
            (["retire"], "needs a key id"),
        ],
    )
    def test_mistakes_are_refused(self, keys_file, args, message):
        with pytest.raises(CommandError, match=message):
            self.rotate(keys_file, *args)

    def test_status_lists_every_key_and_prints_no_secret(self, keys_file):
        self.rotate(keys_file, "add", "new")
        output = self.rotate(keys_file, "status")
        assert "old (md5): active" in output and "new (md5): added, not signing yet" in output and "ooo" not in output

    def test_keys_from_the_environment_cannot_be_edited(self, settings):
        settings.SECURE_LINK = {**settings.SECURE_LINK, "KEYS_FILE": None}
        with pytest.raises(CommandError, match="SECURE_LINK_KEYS"):
            run("rotate_key", "status")


def test_rotate_key_adds_an_hmac_key_and_writes_both_nginx_includes(tmp_path, monkeypatch):
    keys_file = tmp_path / "secure_link.keys"
    keys_file.write_text("old=" + "o" * 43 + "\n")
    monkeypatch.setattr(rotate_key, "now", lambda: 1_000_000)
    output = run("rotate_key", "add", "new", "--algorithm", "hmac-sha256", "--keys-file", str(keys_file),
                 "--nginx-keys", str(tmp_path / "secure_link_keys.conf"))
    key_set = KeySet.from_file(keys_file)
    assert "added hmac-sha256 key new" in output and key_set["new"].algorithm is HMAC_SHA256
    assert key_set.active.kid == "old" and "new=hmac-sha256:" in keys_file.read_text()
    assert '"old"' in (tmp_path / "secure_link_keys.conf").read_text()
    assert '"new"' not in (tmp_path / "secure_link_keys.conf").read_text()
    assert '"new"' in (tmp_path / "secure_link_hmac_keys.conf").read_text()
    assert "new (hmac-sha256): added, not signing yet" in run("rotate_key", "status", "--keys-file", str(keys_file))


def test_a_new_server_creates_its_first_key_with_rotate_key(tmp_path):
    keys_file = tmp_path / "var" / "secure_link.keys"
    env = {**os.environ, "SECURE_LINK_KEYS": "", "SECURE_LINK_KEYS_FILE": str(keys_file), "DJANGO_SECRET_KEY": "x" * 50,
           "DJANGO_SETTINGS_MODULE": "app.settings", "APP_VAR_DIR": str(tmp_path / "var")}

    def manage(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True)

    refused = manage("check")
    assert refused.returncode == 1 and f"the keys file {keys_file}" in refused.stderr  # E001 names the file
    created = manage("rotate_key", "add", "--nginx-keys", str(tmp_path / "secure_link_keys.conf"))
    assert created.returncode == 0, created.stderr
    assert "created the first key, k1 (md5), which signs new links" in created.stdout
    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600 and KeySet.from_file(keys_file).active.kid == "k1"
    assert manage("check").returncode == 0
    assert "added md5 key k2" in manage("rotate_key", "add").stdout  # the next free name, not a timestamp


def test_rotate_key_status_without_a_keys_file_says_how_to_start(tmp_path):
    with pytest.raises(CommandError, match="there is no keys file .*rotate_key add k1"):
        run("rotate_key", "status", "--keys-file", str(tmp_path / "none.keys"))


def test_secure_link_keys_check_says_when_the_file_does_not_exist(tmp_path):
    with pytest.raises(CommandError, match="does not exist: write it with --output"):
        run("secure_link_keys", "--output", str(tmp_path / "no-such-folder"), "--check")


def test_sign_url_refuses_a_path_out_of_the_media_root_before_looking_for_it():
    with pytest.raises(CommandError, match="has an empty, '.' or '..' segment") as refused:
        run("sign_url", "../etc/passwd")
    assert "--allow-missing" not in str(refused.value)
