"""Settings that cannot work stop start-up through Django's system checks, naming the fix."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from signing.django.checks import check_secure_link_settings, protected_locations
from signing import Key, KeySet

REPO = Path(__file__).resolve().parent.parent
GOOD_KEYS = KeySet.parse("k1=" + "1" * 43)


def check_ids(settings, **secure_link) -> list[str]:
    settings.SECURE_LINK = {**settings.SECURE_LINK, **secure_link}
    return [message.id for message in check_secure_link_settings()]


def test_good_settings_pass(settings):
    assert check_ids(settings) == []


@pytest.mark.parametrize(
    "secure_link, error_id",
    [
        ({"KEYS": KeySet()}, "secure_links.E001"),
        ({"KEYS": KeySet.parse("k1=short")}, "secure_links.E002"),
        ({"KEYS": KeySet((Key("Bad Kid", "1" * 43),))}, "secure_links.E003"),
        ({"KEYS": KeySet.parse("k1=" + "1" * 40 + "$;x")}, "secure_links.E003"),
        ({"KEYS": GOOD_KEYS, "ACTIVE_KID": "k9"}, "secure_links.E004"),
        ({"DEFAULT_TTL": 0}, "secure_links.E005"),
        ({"DEFAULT_TTL": -5}, "secure_links.E005"),
        ({"MAX_TTL": "week"}, "secure_links.E005"),
        ({"SHARE_TTL": 0}, "secure_links.E005"),
        ({"DEFAULT_TTL": 7200, "MAX_TTL": 3600}, "secure_links.E006"),
        ({"EXPIRY_BUCKET": -1}, "secure_links.E007"),
    ],
)
def test_unusable_settings_are_check_errors(settings, secure_link, error_id):
    assert check_ids(settings, **secure_link) == [error_id]


def test_the_retired_state_dir_setting_is_a_warning_that_says_where_revocations_go_now(settings):
    settings.SECURE_LINK = {**settings.SECURE_LINK, "STATE_DIR": "/srv/state"}
    messages = check_secure_link_settings()
    assert [m.id for m in messages] == ["secure_links.W009"]
    assert "sync agent" in messages[0].msg and "--state-dir" in messages[0].hint


def test_media_url_must_be_the_prefix_nginx_protects(settings):
    settings.MEDIA_URL = "/files/"
    messages = check_secure_link_settings()
    assert [m.id for m in messages] == ["secure_links.E008"]
    assert "Set MEDIA_URL to '/media/'" in messages[0].hint


def test_check_messages_never_contain_secrets(settings):
    settings.SECURE_LINK = {**settings.SECURE_LINK, "KEYS": KeySet.parse("k1=TOPSECRET")}
    assert "TOPSECRET" not in " ".join(f"{m.msg} {m.hint}" for m in check_secure_link_settings())


def test_manage_py_check_fails_with_the_message(settings):
    settings.SECURE_LINK = {**settings.SECURE_LINK, "KEYS": KeySet(), "KEYS_FILE": None}
    with pytest.raises(SystemCheckError, match="no signing keys"):
        call_command("check")


def test_protected_locations_reads_the_shipped_config():
    assert protected_locations((REPO / "nginx" / "secure_link.conf").read_text()) == ["/media/"]


@pytest.mark.parametrize(
    "environment, message",
    [
        ({"SECURE_LINK_KEYS": "k1=short"}, "secure_links.E002"),
        ({"SECURE_LINK_KEYS": "", "SECURE_LINK_KEYS_FILE": "/nonexistent"}, "secure_links.E001"),
        ({"SECURE_LINK_DEFAULT_TTL": "0"}, "secure_links.E005"),
        ({"SECURE_LINK_DEFAULT_TTL": "ten"}, "SECURE_LINK_DEFAULT_TTL='ten' is not a whole number"),
        ({"SECURE_LINK_KEYS": "no-equals-sign"}, "expected 'kid=secret'"),
        ({"DJANGO_SECRET_KEY": ""}, "set DJANGO_SECRET_KEY"),
    ],
)
def test_the_wsgi_application_refuses_to_start_with_unusable_settings(environment, message, tmp_path):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "app.settings", "DJANGO_SECRET_KEY": "x", "APP_VAR_DIR": str(tmp_path),
           "SECURE_LINK_KEYS": "k1=" + "1" * 43, **environment}
    result = subprocess.run([sys.executable, "-c", "import app.wsgi"], capture_output=True, text=True, env=env, cwd=REPO)
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr  # the one line that matters


def test_manage_py_and_gunicorn_print_one_line_for_a_setting_that_cannot_work(tmp_path):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "app.settings", "DJANGO_SECRET_KEY": "x", "APP_VAR_DIR": str(tmp_path),
           "SECURE_LINK_KEYS": "k1=" + "1" * 43, "SECURE_LINK_DEFAULT_TTL": "abc"}
    line = "error: SECURE_LINK_DEFAULT_TTL='abc' is not a whole number"
    manage = subprocess.run([sys.executable, "manage.py", "check"], capture_output=True, text=True, env=env, cwd=REPO)
    assert (manage.returncode, manage.stderr.strip()) == (1, line)
    gunicorn = subprocess.run([sys.executable, "-m", "gunicorn", "app.wsgi:application", "--preload", "--workers", "2",
                               "--bind", "127.0.0.1:0"], capture_output=True, text=True, env=env, cwd=REPO, timeout=60)
    assert gunicorn.returncode != 0 and gunicorn.stderr.count(line) == 1 and "Traceback" not in gunicorn.stderr
