import stat

import pytest

from signing import KeySet, generate_secret, parse_key_set, parse_keys, render_key_set, render_nginx_keys
from signing.keys import write_private_file


def test_generated_secrets_are_long_enough_and_unique():
    secrets = {generate_secret() for _ in range(20)}
    assert len(secrets) == 20 and all(len(secret) >= 32 for secret in secrets)


def test_parse_keys_reads_lines_commas_and_comments_in_order():
    text = "# keys\nold=" + "a" * 32 + "\n\nnew=" + "b" * 32 + " , extra=" + "c" * 32 + "  # newest\n"
    assert list(parse_keys(text).items()) == [("old", "a" * 32), ("new", "b" * 32), ("extra", "c" * 32)]


@pytest.mark.parametrize("text, message", [("justakey", "expected 'kid=secret'"), ("a=1\na=2", "appears twice")])
def test_parse_keys_errors_name_the_line(text, message):
    with pytest.raises(ValueError, match=message):
        parse_keys(text)


def test_render_nginx_keys_is_the_map_body():
    assert render_nginx_keys({"k1": "a" * 32}).splitlines()[1:] == [f'"k1" "{"a" * 32}";']


def test_render_nginx_keys_refuses_unusable_keys():
    with pytest.raises(ValueError, match="at least 32"):
        render_nginx_keys({"k1": "short"})


def test_write_private_file_is_0600_and_replaces_atomically(tmp_path):
    target = tmp_path / "keys.conf"
    target.write_text("old")
    target.chmod(0o644)
    write_private_file(target, "new")
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["keys.conf"]


def test_key_set_round_trips_with_its_active_line():
    key_set = KeySet({"a": "a" * 32, "b": "b" * 32}, active_kid="a", active_since=1_800_000_000)
    assert parse_key_set(render_key_set(key_set)) == key_set
    assert parse_key_set("a=" + "a" * 32 + ",b=" + "b" * 32).signing_kid == "b"  # default: the last key
    assert parse_key_set("a=" + "a" * 32 + "\nactive: a").signing_kid == "a"


@pytest.mark.parametrize("line", ["active:", "active: a since", "active: a since soon", "active: a b c"])
def test_bad_active_lines_name_the_problem(line):
    with pytest.raises(ValueError, match="line 2: expected 'active: KID'"):
        parse_key_set("a=" + "a" * 32 + "\n" + line)
