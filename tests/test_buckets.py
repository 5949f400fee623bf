"""signing.buckets: a bucket is one URL, its credentials a private file; mistakes are one line, secrets never shown."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from signing.buckets import Bucket, Credentials
from signing.keys import write_private_file

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


def credentials_file(folder: Path, text: str, mode: int = 0o600) -> Path:
    path = folder / "s3.credentials"
    write_private_file(path, text)
    path.chmod(mode)
    return path


def test_a_bucket_url_names_the_bucket_its_storage_region_addressing_and_credentials_file():
    bucket = Bucket.parse("s3://media?endpoint=https://s3.eu-west-1.amazonaws.com/&region=eu-west-1"
                          "&addressing=virtual&credentials=/srv/app/s3.credentials")
    assert bucket == Bucket("media", "https://s3.eu-west-1.amazonaws.com", "eu-west-1", "virtual",
                            Path("/srv/app/s3.credentials"))
    assert (bucket.host, bucket.path_prefix, bucket.address) == ("media.s3.eu-west-1.amazonaws.com", "",
                                                                  "s3.eu-west-1.amazonaws.com:443")
    assert Bucket.parse(str(bucket)) == bucket  # one value, written and read back


def test_path_style_is_the_default_and_keeps_the_port_in_the_host():
    bucket = Bucket.parse("s3://media?endpoint=http://127.0.0.1:8333")
    assert (bucket.region, bucket.addressing, bucket.host, bucket.path_prefix) == ("us-east-1", "path",
                                                                                   "127.0.0.1:8333", "/media")
    assert Bucket.parse("s3://media?endpoint=http://[::1]:9000").address == "[::1]:9000"


@pytest.mark.parametrize("url, message", [
    ("https://media?endpoint=http://x", "a bucket is s3://NAME"),
    ("s3://media/some/prefix?endpoint=http://x", "a bucket is s3://NAME"),
    ("s3://media", "needs its storage's endpoint"),
    ("s3://media?endpoint=http://x&secret=abc", "unknown parameters: secret"),
    ("s3://Media_Files?endpoint=http://x", "is not one S3 accepts"),
    ("s3://media?endpoint=ftp://x", "the endpoint must be http"),
    ("s3://media?endpoint=http://x/path", "the endpoint must be http"),
    ("s3://media?endpoint=http://x&region=EU West", "is not a region's name"),
    ("s3://media?endpoint=http://x&addressing=dns", "addressing must be one of"),
    ("s3://media?endpoint=http://x:port", "the endpoint's port is not a number"),
    ("s3://media?endpoint=http://x/?signature=1", "the endpoint must be http"),
])
def test_a_bucket_url_that_cannot_work_is_refused_in_one_line(url, message):
    with pytest.raises(ValueError, match=message) as raised:
        Bucket.parse(url)
    assert "\n" not in str(raised.value)


def test_credentials_come_from_a_file_only_its_owner_reads(tmp_path):
    path = credentials_file(tmp_path, f"# the app's\nACCESS_KEY_ID=AKIAAPP\nSECRET_ACCESS_KEY={SECRET}\n")
    bucket = Bucket.parse(f"s3://media?endpoint=http://x&credentials={path}")
    assert bucket.credentials() == Credentials("AKIAAPP", SECRET)
    assert SECRET not in repr(bucket.credentials()) and SECRET not in str(bucket)


@pytest.mark.parametrize("text, mode, message", [
    (f"ACCESS_KEY_ID=AKIAAPP\nSECRET_ACCESS_KEY={SECRET}\n", 0o644, "readable by others .* chmod 600"),
    ("ACCESS_KEY_ID=AKIAAPP\n", 0o600, "needs ACCESS_KEY_ID= and SECRET_ACCESS_KEY= lines"),
    ("ACCESS_KEY_ID=AKIAAPP\nSECRET_ACCESS_KEY=has space and $\n", 0o600, "the secret of access key AKIAAPP must be"),
    (f"ACCESS_KEY_ID=AK\nSECRET_ACCESS_KEY={SECRET}\n", 0o600, "the access key id must be"),
])
def test_a_credentials_file_that_cannot_work_is_refused_without_showing_the_secret(tmp_path, text, mode, message):
    path = credentials_file(tmp_path, text, mode)
    with pytest.raises(ValueError, match=message) as raised:
        Credentials.from_file(path)
    assert SECRET not in str(raised.value) and "$" not in str(raised.value)


def test_a_missing_credentials_file_names_it(tmp_path):
    with pytest.raises(ValueError, match=f"cannot read the credentials file {tmp_path / 'none'}"):
        Credentials.from_file(tmp_path / "none")


def test_without_a_file_the_credentials_come_from_the_environment():
    bucket = Bucket.parse("s3://media?endpoint=http://x")
    assert bucket.credentials({"AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": SECRET}) == \
        Credentials("AKIAENV", SECRET)
    with pytest.raises(ValueError, match="no credentials: name a file with credentials=FILE"):
        bucket.credentials({})


def test_a_credentials_file_is_written_for_its_owner_alone(tmp_path):
    path = tmp_path / "written"
    write_private_file(path, Credentials("AKIAAPP", SECRET).render())
    assert os.stat(path).st_mode & 0o077 == 0
    assert Credentials.from_file(path) == Credentials("AKIAAPP", SECRET)


@pytest.mark.parametrize("url", ["s3://media?endpoint=https://AKIA:wJalrSECRET@s3.example.com",
                                 "s3://AKIA:wJalrSECRET@media?endpoint=https://s3.example.com",
                                 "https://AKIA:wJalrSECRET@s3.example.com/media"])
def test_credentials_written_into_the_url_are_refused_and_never_repeated(url):
    with pytest.raises(ValueError) as raised:
        Bucket.parse(url)
    assert "wJalrSECRET" not in str(raised.value)


def test_an_https_storage_is_verified_under_its_host_name_without_the_port():
    assert Bucket.parse("s3://media?endpoint=https://minio.example.com:9000").tls_name == "minio.example.com"
    assert Bucket.parse("s3://media?endpoint=https://s3.eu-west-1.amazonaws.com&addressing=virtual").tls_name == \
        "media.s3.eu-west-1.amazonaws.com"
