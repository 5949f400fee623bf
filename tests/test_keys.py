"""signing.keys: the key record, the key set, its file format, its checks and its lifecycle rules."""

import stat

import pytest

from signing import HMAC_SHA256, MD5, Key, KeySet, KeySetError, KeyState, generate_secret
from signing.keys import nginx_includes_directory, write_private_file

A, B, C = "a" * 32, "b" * 32, "c" * 32


def test_generated_secrets_are_long_enough_and_unique():
    secrets = {generate_secret() for _ in range(20)}
    assert len(secrets) == 20 and all(len(secret) >= 32 for secret in secrets)


def test_parse_reads_lines_commas_and_comments_in_order():
    text = "# keys\nold=" + A + "\n\nnew=" + B + " , extra=hmac-sha256:" + C + "  # newest\n"
    key_set = KeySet.parse(text)
    assert key_set.keys == (Key("old", A), Key("new", B), Key("extra", C, HMAC_SHA256))
    assert [key.algorithm for key in key_set] == [MD5, MD5, HMAC_SHA256]


@pytest.mark.parametrize("text, message", [
    ("justakey", "expected 'kid=secret'"), ("a=1\na=2", "line 2: key id 'a' appears twice"),
    ("a=sha1:" + A, "unknown algorithm"),
])
def test_parse_errors_name_the_line_and_are_key_set_errors(text, message):
    with pytest.raises(KeySetError, match=message):
        KeySet.parse(text)


def test_a_key_carries_its_algorithm_and_hides_its_secret():
    key = Key("h1", A, HMAC_SHA256)
    assert (key.algorithm.token_argument, key.algorithm.nginx_include) == ("hmac", "secure_link_hmac_keys.conf")
    assert (MD5.token_argument, MD5.nginx_include) == ("md5", "secure_link_keys.conf")
    assert A not in repr(key) and A not in repr(KeySet((key,)))
    assert key.render() == f"h1=hmac-sha256:{A}" and Key("k1", A).render() == f"k1={A}"


def test_nginx_includes_hold_each_key_in_its_algorithm_s_map():
    includes = KeySet((Key("k1", A), Key("h1", B, HMAC_SHA256))).nginx_includes()
    assert includes["secure_link_keys.conf"].splitlines()[1:] == [f'"k1" "{A}";']
    assert includes["secure_link_hmac_keys.conf"].splitlines()[1:] == [f'"h1" "{B}";']


def test_nginx_includes_refuse_unusable_keys():
    with pytest.raises(KeySetError, match="at least 32"):
        KeySet.parse("k1=short").nginx_includes()


def test_write_nginx_includes_writes_both_files_0600(tmp_path):
    written = KeySet((Key("k1", A),)).write_nginx_includes(tmp_path)
    assert sorted(path.name for path in written) == ["secure_link_hmac_keys.conf", "secure_link_keys.conf"]
    assert all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in written)
    assert nginx_includes_directory(tmp_path / "secure_link_keys.conf") == tmp_path
    assert nginx_includes_directory(tmp_path) == tmp_path


def test_write_private_file_is_0600_and_replaces_atomically(tmp_path):
    target = tmp_path / "keys.conf"
    target.write_text("old")
    target.chmod(0o644)
    write_private_file(target, "new")
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["keys.conf"]


def test_key_set_round_trips_with_its_active_line():
    key_set = KeySet((Key("a", A), Key("b", B, HMAC_SHA256)), active_kid="a", active_since=1_800_000_000)
    assert KeySet.parse(key_set.render()) == key_set
    assert KeySet.parse("a=" + A + ",b=" + B).active.kid == "b"  # default: the last key
    assert KeySet.parse("a=" + A + "\nactive: a").active.kid == "a"


@pytest.mark.parametrize("line", ["active:", "active: a since", "active: a since soon", "active: a b c"])
def test_bad_active_lines_name_the_problem(line):
    with pytest.raises(KeySetError, match="line 2: expected 'active: KID'"):
        KeySet.parse("a=" + A + "\n" + line)


@pytest.mark.parametrize("text, codes", [
    ("", ["no-keys"]),
    ("k1=short", ["short-secret"]),
    ("Bad=" + A, ["bad-kid"]),
    ("k1=" + "a" * 31 + "$", ["bad-secret"]),
    ("k1=" + A + "\nactive: k9", ["unknown-active"]),
    ("k1=short\nK2=" + A + "\nactive: k9", ["short-secret", "bad-kid", "unknown-active"]),
])
def test_problems_lists_everything_wrong_in_one_place(text, codes):
    assert [problem.code for problem in KeySet.parse(text).problems()] == codes


def test_problems_never_show_a_secret():
    messages = " ".join(problem.message for problem in KeySet.parse("k1=TOPSECRET\nactive: k9").problems())
    assert "TOPSECRET" not in messages and "'k1'" in messages


def test_from_environment_reads_the_keys_and_pins_the_active_key():
    environ = {"SECURE_LINK_KEYS": f"k1={A},k2={B}", "SECURE_LINK_ACTIVE_KID": "k1"}
    assert KeySet.from_environment(environ).active.kid == "k1"
    assert KeySet.from_environment({}) == KeySet()
    with pytest.raises(KeySetError, match="SECURE_LINK_KEYS: line 1"):
        KeySet.from_environment({"SECURE_LINK_KEYS": "nonsense"})


def test_from_file_reads_the_keys_file(tmp_path):
    path = tmp_path / "secure_link.keys"
    KeySet((Key("k1", A),)).write(path)
    assert KeySet.from_file(path).kids == ("k1",) and stat.S_IMODE(path.stat().st_mode) == 0o600


class TestLifecycle:
    MAX_LIFETIME = 3600

    def test_the_first_key_signs_at_once(self):
        key_set, key = KeySet().add(now=100)
        assert (key.kid, key_set.active_kid, key_set.active_since) == ("k1", "k1", 100)

    def test_a_new_key_joins_without_signing_and_takes_the_next_free_name(self):
        start = KeySet.parse(f"k1={A}")
        added, key = start.add(algorithm=HMAC_SHA256, now=100)
        assert key.kid == "k2" and key.algorithm is HMAC_SHA256 and added.active.kid == "k1"
        assert KeySet.parse(added.render()) == added

    @pytest.mark.parametrize("kid, message", [("k1", "exists already"), ("Bad Id", "is not valid")])
    def test_add_refuses_bad_or_taken_ids(self, kid, message):
        with pytest.raises(KeySetError, match=message):
            KeySet.parse(f"k1={A}").add(kid, now=1)

    def test_activate_records_since_when(self):
        key_set = KeySet.parse(f"k1={A}\nk2={B}\nactive: k1").activate("k2", now=500)
        assert (key_set.active.kid, key_set.active_since) == ("k2", 500)
        with pytest.raises(KeySetError, match="already signs"):
            key_set.activate("k2", now=501)
        with pytest.raises(KeySetError, match="no key 'k9'"):
            key_set.activate("k9", now=501)

    def test_retire_waits_until_every_link_of_the_key_has_expired(self):
        key_set = KeySet.parse(f"k1={A}\nk2={B}\nactive: k2 since 1000")
        assert key_set.retire_safe_after(self.MAX_LIFETIME) == 1000 + self.MAX_LIFETIME
        with pytest.raises(KeySetError, match="may live until 1970-01-01T01:16:40Z"):
            key_set.retire("k1", now=1000 + self.MAX_LIFETIME, max_lifetime=self.MAX_LIFETIME)
        retired = key_set.retire("k1", now=1001 + self.MAX_LIFETIME, max_lifetime=self.MAX_LIFETIME)
        assert retired.kids == ("k2",) and retired.active_since == 1000

    def test_retire_force_revokes_at_once_but_never_the_signing_key(self):
        key_set = KeySet.parse(f"k1={A}\nk2={B}\nactive: k2")
        assert key_set.retire("k1", now=1, max_lifetime=self.MAX_LIFETIME, force=True).kids == ("k2",)
        with pytest.raises(KeySetError, match="unknown time"):
            key_set.retire("k1", now=1, max_lifetime=self.MAX_LIFETIME)
        with pytest.raises(KeySetError, match="signs new links: activate another key first"):
            key_set.retire("k2", now=1, max_lifetime=self.MAX_LIFETIME, force=True)

    def test_states_say_where_each_key_stands(self):
        key_set = KeySet.parse(f"k1={A}\nk2={B}\nk3={C}\nactive: k2 since 1000")
        at = {key.kid: state for key, state in key_set.states(now=2000, max_lifetime=self.MAX_LIFETIME)}
        assert at == {"k1": KeyState.IN_USE, "k2": KeyState.ACTIVE, "k3": KeyState.PENDING}
        later = {key.kid: state for key, state in key_set.states(now=5000, max_lifetime=self.MAX_LIFETIME)}
        assert later["k1"] is KeyState.RETIRABLE
        unknown = KeySet.parse(f"k1={A}\nk2={B}\nactive: k2").states(now=1, max_lifetime=1)
        assert unknown[0][1] is KeyState.UNKNOWN


def test_retired_key_ids_survive_the_keys_file_and_every_change():
    key_set = KeySet.parse(f"k1={A}\nk2={B}\nactive: k2 since 100\n")
    retired = key_set.retire("k1", now=10**9, max_lifetime=60)
    assert retired.retired_kids == ("k1",) and retired.kids == ("k2",)
    assert KeySet.parse(retired.render()) == retired
    added, key = retired.add(now=10**9)
    assert key.kid == "k3" and added.retired_kids == ("k1",)
    assert added.activate("k3", now=10**9).retired_kids == ("k1",)
    assert added.nginx_keys().retired_kids == ("k1",)
    assert "k1" not in added.nginx_includes()["secure_link_keys.conf"]


def test_a_retired_key_id_is_refused_when_added_or_found_among_the_keys():
    key_set = KeySet.parse(f"k2={B}\nretired: k1\n")
    with pytest.raises(KeySetError, match="key id 'k1' was retired and is never used again.*e.g. k3"):
        key_set.add("k1", now=1)
    with pytest.raises(KeySetError, match="key id 'k1' is both a key and retired"):
        KeySet.parse(f"k1={A}\nretired: k1\n")
    with pytest.raises(KeySetError, match="line 2: key id 'K1' is not valid"):
        KeySet.parse(f"k2={B}\nretired: K1\n")
