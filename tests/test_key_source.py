"""A running app server follows the keys file by itself and never swaps good keys for bad ones."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from signing.key_source import KeysFileWatcher
from signing import BadSignature, Key, KeySet
from signing.keys import write_private_file

K1, K2 = Key("k1", "1" * 43), Key("k2", "2" * 43)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    path = tmp_path / "secure_link.keys"
    write_private_file(path, KeySet((K1,)).render())
    return path


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def watcher(keys_file: Path, clock: FakeClock) -> KeysFileWatcher:
    return KeysFileWatcher(keys_file, interval=1.0, clock=clock)


def rewrite(path: Path, text: str) -> None:
    write_private_file(path, text)


def test_first_call_reads_the_file(watcher):
    key_set = watcher.current()
    assert (key_set.keys, key_set.active.kid, watcher.error) == ((K1,), "k1", None)


def test_a_change_is_seen_once_the_interval_has_passed(watcher, keys_file, clock):
    watcher.current()
    rewrite(keys_file, KeySet((K1, K2), "k2", 123).render())
    clock.now += 0.5
    assert watcher.current().active.kid == "k1"  # inside the interval: not even a stat
    clock.now += 0.5
    key_set = watcher.current()
    assert (list(key_set.kids), key_set.active.kid, key_set.active_since) == (["k1", "k2"], "k2", 123)


def test_an_unchanged_file_is_not_read_again(watcher, keys_file, clock, monkeypatch):
    first = watcher.current()
    reads = []
    original = Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: reads.append(self) or original(self, *a, **k))
    clock.now += 5
    assert watcher.current() is first and reads == []


@pytest.mark.parametrize(
    "bad_text, reason",
    [
        ("k1=" + K1.secret + "\nk2=shor", "at least 32 are required"),  # caught half-written
        ("k1\n", "expected 'kid=secret'"),
        ("", "no signing keys"),
        ("k1=" + K1.secret + "\nactive: k9\n", "the active key id 'k9' is not among"),
        (b"\xff\xfe", "codec can't decode"),
    ],
)
def test_an_invalid_file_keeps_the_last_good_keys_and_logs_why(watcher, keys_file, clock, caplog, bad_text, reason):
    good = watcher.current()
    if isinstance(bad_text, bytes):
        keys_file.write_bytes(bad_text)
    else:
        rewrite(keys_file, bad_text)
    clock.now += 1
    with caplog.at_level(logging.ERROR, logger="signing.keys"):
        assert watcher.current() is good
        clock.now += 1
        assert watcher.current() is good  # the same bad file: logged once, not every second
    assert [record.levelname for record in caplog.records] == ["ERROR"]
    assert reason in caplog.records[0].getMessage() and str(keys_file) in caplog.records[0].getMessage()
    assert K1.secret not in caplog.text and reason in (watcher.error or "")
    rewrite(keys_file, KeySet((K1, K2)).render())
    clock.now += 1
    assert list(watcher.current().kids) == ["k1", "k2"] and watcher.error is None


def test_an_unreadable_or_missing_file_keeps_the_last_good_keys(watcher, keys_file, clock, caplog):
    good = watcher.current()
    keys_file.unlink()
    clock.now += 1
    with caplog.at_level(logging.ERROR, logger="signing.keys"):
        assert watcher.current() is good
    assert "No such file or directory" in caplog.text and "still using the last good keys (k1)" in caplog.text


def test_a_pinned_active_key_overrides_the_files_active_line(keys_file, clock):
    rewrite(keys_file, KeySet((K1, K2), "k2", 5).render())
    assert KeysFileWatcher(keys_file, interval=1.0, active_kid="k1", clock=clock).current().active.kid == "k1"


def test_without_a_first_good_read_there_are_no_keys(tmp_path, clock):
    watcher = KeysFileWatcher(tmp_path / "missing.keys", interval=1.0, clock=clock)
    assert watcher.current() == KeySet() and "missing.keys" in (watcher.error or "")


def test_the_django_signers_follow_the_keys_file(settings, keys_file):
    from signing.django.conf import get_link_signer, get_token_signer

    settings.SECURE_LINK = {**settings.SECURE_LINK, "KEYS": KeySet(), "KEYS_FILE": keys_file, "KEYS_CHECK_INTERVAL": 0}
    link_signer, share_signer = get_link_signer(), get_token_signer("tests.share")
    assert get_link_signer() is link_signer  # unchanged file: the same signers, not rebuilt
    token, _ = share_signer.sign("image:1", ttl=60)
    rewrite(keys_file, KeySet((K2,)).render())
    os.utime(keys_file)
    assert get_link_signer().active_kid == "k2" and get_link_signer().key_set.kids == ("k2",)
    with pytest.raises(BadSignature, match="does not verify"):
        get_token_signer("tests.share").verify(token, subject="image:1")
