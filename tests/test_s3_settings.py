"""A bucket as the default storage: one setting, checked at start-up, and what install_nginx makes of it.

No S3 server is needed here (boto3 connects on the first call); tests/test_s3_origin.py runs the
same storage against a real one.
"""

from __future__ import annotations

import stat
from io import StringIO

import pytest
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command

from signing.buckets import Credentials
from signing.django.checks import check_secure_link_settings
from signing.django.s3 import SignedS3Storage
from signing.keys import write_private_file
from tests.app_fixtures import verify_url

APP = Credentials("AKIAAPPREADWRITE", "app/secret+for=writing0000")
ORIGIN = Credentials("AKIAORIGINREAD", "origin/secret+for=reading00")


@pytest.fixture
def app_credentials(tmp_path):
    path = tmp_path / "app.credentials"
    write_private_file(path, APP.render())
    return path


def use_bucket(settings, url: str, **options: object) -> None:
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "signing.django.s3.SignedS3Storage", "OPTIONS": {"bucket": url, **options}}}


def storage_errors() -> list[str]:
    return [f"{message.id}: {message.msg}" for message in check_secure_link_settings()
            if message.id == "secure_links.E011"]


def test_a_bucket_storage_signs_the_same_links_as_the_disk(settings, app_credentials):
    use_bucket(settings, f"s3://media?endpoint=http://127.0.0.1:9&credentials={app_credentials}")
    assert isinstance(default_storage, SignedS3Storage)
    assert (default_storage.bucket_name, default_storage.endpoint_url) == ("media", "http://127.0.0.1:9")
    assert default_storage.access_key == APP.key_id and default_storage.default_acl is None
    url = default_storage.url("images/a b+c.png")
    assert verify_url(url).uri == "/media/images/a b+c.png".encode()  # our link, not a presigned S3 URL
    assert "X-Amz" not in url and "127.0.0.1:9" not in url
    assert storage_errors() == []


@pytest.mark.parametrize("url, message", [
    ("s3://media", "needs its storage's endpoint"),
    ("s3://media?endpoint=http://127.0.0.1:9&credentials=/nonexistent/s3.credentials",
     "cannot read the credentials file /nonexistent/s3.credentials"),
])
def test_a_bucket_that_cannot_work_stops_start_up_in_one_line(settings, url, message):
    use_bucket(settings, url)
    (error,) = storage_errors()
    assert message in error and "\n" not in error


def test_credentials_others_can_read_stop_start_up_without_showing_them(settings, app_credentials):
    app_credentials.chmod(0o644)
    use_bucket(settings, f"s3://media?endpoint=http://127.0.0.1:9&credentials={app_credentials}")
    (error,) = storage_errors()
    assert "chmod 600" in error and APP.secret not in error


@pytest.mark.parametrize("how", ["option", "AWS_LOCATION"])
def test_a_key_prefix_is_refused_the_object_key_is_the_files_name(settings, app_credentials, how):
    options = {"location": "media"} if how == "option" else {}
    if how == "AWS_LOCATION":
        settings.AWS_LOCATION = "media"  # django-storages' own setting
    use_bucket(settings, f"s3://media?endpoint=http://127.0.0.1:9&credentials={app_credentials}", **options)
    (error,) = storage_errors()
    assert "remove the 'location' option (and AWS_LOCATION)" in error


def test_a_storage_that_cannot_be_imported_names_the_extra(settings):
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "storages_not_installed.backends.s3.S3Storage"}}
    (error,) = storage_errors()
    assert "cannot be imported" in error
    assert [m.hint for m in check_secure_link_settings() if m.id == "secure_links.E011"] == [
        "A bucket's storage needs django-storages and boto3: pip install 'signed-downloads[django,s3]'."]


def test_install_nginx_asks_for_the_origins_own_credentials_never_the_apps(settings, app_credentials, tmp_path):
    use_bucket(settings, f"s3://media?endpoint=http://127.0.0.1:9&credentials={app_credentials}")
    with pytest.raises(CommandError, match="pass --origin-credentials FILE, the origin's read-only access key"):
        call_command("install_nginx", "--config-folder", str(tmp_path / "etc"), stdout=StringIO())
    origin_file = tmp_path / "origin.credentials"
    write_private_file(origin_file, ORIGIN.render())
    out = StringIO()
    call_command("install_nginx", "--config-folder", str(tmp_path / "etc"), "--origin-credentials", str(origin_file),
                 "--cache-folder", str(tmp_path / "cache"), "--signer-socket", str(tmp_path / "s3.sock"), stdout=out)
    conf = tmp_path / "etc" / "secure_link_bucket.conf"
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600
    text = conf.read_text()
    assert ORIGIN.secret in text and APP.secret not in text and APP.key_id not in text
    report = out.getvalue()
    assert "include secure_link/http/origin_s3.conf;" in report and "include secure_link_s3.conf;" in report
    assert f"fetches from media at http://127.0.0.1:9 as {ORIGIN.key_id}" in report and ORIGIN.secret not in report
    assert 'set $secure_link_s3_freshness "60";' in text and "proxy_ssl" not in text  # http: no TLS lines


def test_an_edge_install_needs_no_bucket(settings, app_credentials, tmp_path):
    use_bucket(settings, f"s3://media?endpoint=http://127.0.0.1:9&credentials={app_credentials}")
    call_command("install_nginx", "--config-folder", str(tmp_path), "--role", "edge", stdout=StringIO())
    assert not (tmp_path / "secure_link_bucket.conf").exists()


def test_copy_media_to_storage_refuses_to_copy_the_media_root_into_itself(settings):
    with pytest.raises(CommandError, match=r"set STORAGES\['default'\] to the bucket first"):
        call_command("copy_media_to_storage", stdout=StringIO())


def test_copy_media_to_storage_names_a_missing_folder(settings, app_credentials, tmp_path):
    use_bucket(settings, f"s3://media?endpoint=http://127.0.0.1:9&credentials={app_credentials}")
    with pytest.raises(CommandError, match="is not a folder: pass --from FOLDER"):
        call_command("copy_media_to_storage", "--from", str(tmp_path / "none"), stdout=StringIO())
