"""``python -m signing``, run as a user would, in a subprocess."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from signing import KeySet, SecureLinkSigner
from tests.client import fetch

REPO = Path(__file__).resolve().parent.parent


def run_cli(*args: str, env_keys: str | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECURE_LINK_")}
    if env_keys is not None:
        env["SECURE_LINK_KEYS"] = env_keys
    return subprocess.run([sys.executable, "-m", "signing", *args], capture_output=True, text=True, env=env, cwd=cwd)


def test_genkey_prints_a_usable_secret():
    result = run_cli("genkey")
    assert result.returncode == 0 and len(result.stdout.strip()) >= 32


def test_sign_reads_keys_from_the_environment_and_verify_agrees():
    keys = "old=" + "o" * 32 + ",new=" + "n" * 32
    signed = run_cli("sign", "/media/a b.jpg", "--ttl", "60", "--base-url", "http://example.test", env_keys=keys)
    url = signed.stdout.strip()
    assert signed.returncode == 0 and url.startswith("http://example.test/media/a%20b.jpg?md5=")
    assert "kid=new" in url  # the last key listed signs
    verified = run_cli("verify", url, env_keys=keys)
    assert (verified.returncode, verified.stdout.split(":")[0]) == (0, "valid")


@pytest.mark.parametrize(
    "mangle, status, word",
    [
        (lambda url: url.replace("kid=new", "kid=old"), 1, "invalid (403)"),
        (lambda url: url.replace("/media/a", "/media/a%zz"), 4, "malformed (400)"),
    ],
)
def test_verify_exit_status_says_what_nginx_would_answer(mangle, status, word):
    keys = "old=" + "o" * 32 + ",new=" + "n" * 32
    url = run_cli("sign", "/media/a.jpg", "--ttl", "60", env_keys=keys).stdout.strip()
    result = run_cli("verify", mangle(url), env_keys=keys)
    assert (result.returncode, result.stdout.startswith(word)) == (status, True)


def test_verify_reports_expired_links_with_exit_3(tmp_path):
    keys_file = tmp_path / "keys"
    keys_file.write_text("k=" + "k" * 32 + "\n")
    # An expired but correctly signed link, built through the library.
    url = SecureLinkSigner(KeySet.from_file(keys_file), clock=lambda: 100).sign("/media/a.jpg", ttl=1).url
    result = run_cli("verify", url, "--keys-file", str(keys_file))
    assert (result.returncode, result.stdout.startswith("expired (410)")) == (3, True)


def test_missing_keys_is_a_clear_usage_error():
    result = run_cli("sign", "/media/a.jpg", "--ttl", "60", env_keys="")
    assert result.returncode == 2
    assert "pass --keys-file FILE or set SECURE_LINK_KEYS" in result.stderr


def test_unsafe_path_is_a_clear_error_and_prints_no_secret():
    result = run_cli("sign", "/media/../etc/passwd", "--ttl", "60", env_keys="k=" + "z" * 32)
    assert result.returncode == 2 and "'..' segment" in result.stderr
    assert "zzzz" not in result.stderr + result.stdout


def test_nginx_keys_writes_a_0600_file_and_prints_no_secret(tmp_path):
    result = run_cli("nginx-keys", "--output", str(tmp_path), env_keys="k=" + "z" * 32)
    output = tmp_path / "secure_link_keys.conf"
    assert result.returncode == 0 and "zzzz" not in result.stdout
    assert (output.stat().st_mode & 0o777, '"k" "' + "z" * 32 + '";' in output.read_text()) == (0o600, True)


@pytest.mark.nginx
def test_a_cli_signed_link_downloads_through_nginx(nginx):
    keys = nginx.key_set.render()
    url = run_cli("sign", "/media/files/other.bin", "--ttl", "60", "--base-url", nginx.base_url, env_keys=keys).stdout.strip()
    response = fetch(nginx.base_url, url[len(nginx.base_url):])
    assert (response.status, response.body) == (200, b"another file")


def test_verify_says_when_a_bound_link_was_checked_from_another_address():
    keys = "k1=" + "1" * 43
    url = run_cli("sign", "/media/a.bin", "--ttl", "60", "--client-ip", "192.0.2.9", env_keys=keys).stdout.strip()
    refused = run_cli("verify", url, env_keys=keys)
    assert refused.returncode == 1 and "pass the client's address with --remote-addr" in refused.stdout
    assert run_cli("verify", url, "--remote-addr", "192.0.2.9", env_keys=keys).returncode == 0


def test_each_command_takes_only_the_options_it_uses():
    assert "--kid" not in run_cli("verify", "--help").stdout
    assert run_cli("nginx-keys", "--output", "x.conf", "--prefix", "/files/").returncode == 2
    assert "secure_link_hmac_keys.conf" in run_cli("nginx-keys", "--help").stdout


def test_install_nginx_with_a_bucket_writes_the_origins_bucket_conf_and_refuses_in_one_line(tmp_path):
    from signing.buckets import Credentials
    from signing.keys import write_private_file

    keys = tmp_path / "keys"
    write_private_file(keys, "k1=" + "k" * 43 + "\n")
    credentials = tmp_path / "origin.credentials"
    write_private_file(credentials, Credentials("AKIAORIGIN", "origin/secret+value=0000").render())
    bucket = f"s3://media?endpoint=http://127.0.0.1:8333&credentials={credentials}"
    result = run_cli("install-nginx", "--keys-file", str(keys), "--config-folder", str(tmp_path / "etc"),
                     "--bucket", bucket, "--freshness", "15")
    assert result.returncode == 0, result.stderr
    assert "include secure_link/http/origin_s3.conf;" in result.stdout and "origin/secret" not in result.stdout
    conf = (tmp_path / "etc" / "secure_link_bucket.conf").read_text()
    assert 'set $secure_link_s3_freshness "15";' in conf and 'set $secure_link_s3_key_id "AKIAORIGIN";' in conf
    credentials.chmod(0o644)
    refused = run_cli("install-nginx", "--keys-file", str(keys), "--config-folder", str(tmp_path / "other"),
                      "--bucket", bucket)
    assert refused.returncode != 0 and "chmod 600" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "other").exists()
