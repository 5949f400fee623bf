"""signing.nginx.link_state: the per-link state nginx reads, as files (no Django, no nginx here;
tests/test_link_control_live.py proves nginx reads and writes the same layout)."""

from __future__ import annotations

import multiprocessing

import pytest

from signing import LinkState


def _take(args: tuple[str, str, int]) -> int | None:
    root, link_id, limit = args
    return LinkState(root).take(link_id, limit, expires=2_000_000_000)


def test_racing_processes_take_each_download_once(tmp_path):
    with multiprocessing.get_context("fork").Pool(8) as pool:
        taken = pool.map(_take, [(str(tmp_path), "AbCdEfGh12345678", 5)] * 40)
    assert sorted(number for number in taken if number is not None) == [1, 2, 3, 4, 5]
    assert taken.count(None) == 35
    assert LinkState(tmp_path).downloads("AbCdEfGh12345678") == 5


def test_a_download_given_back_is_taken_again_and_counts_add_up_in_any_order(tmp_path):
    state = LinkState(tmp_path)
    assert [state.take("AbCdEfGh12345678", 2, expires=2_000_000_000) for _ in range(3)] == [1, 2, None]
    state.give_back("AbCdEfGh12345678", expires=2_000_000_000)
    assert state.take("AbCdEfGh12345678", 2, expires=2_000_000_000) == 2
    with open(state.journal, "a") as journal:  # lines as nginx's workers append them, interleaved
        journal.write("ZzZzZzZz87654321 -1 2000000000\nZzZzZzZz87654321 +1 2000000000\n"
                      "ZzZzZzZz87654321 +1 2000000000\nnot a line\n")
    assert state.download_counts() == {"AbCdEfGh12345678": 2, "ZzZzZzZz87654321": 1}


def test_revocations_are_files_an_agent_can_mirror(tmp_path):
    origin, edge = LinkState(tmp_path / "origin").ensure(), LinkState(tmp_path / "edge").ensure()
    origin.revoke("AbCdEfGh12345678", expires=2_000_000_000)
    edge.revoke("ZzZzZzZz87654321", expires=2_000_000_000)
    assert edge.replace_revocations(origin.revocations()) == (1, 1)
    assert edge.is_revoked("AbCdEfGh12345678") and not edge.is_revoked("ZzZzZzZz87654321")
    assert (tmp_path / "edge" / "revoked" / "AbCdEfGh12345678").read_text() == "2000000000\n"


def test_revocations_of_expired_links_are_pruned(tmp_path):
    state = LinkState(tmp_path)
    state.revoke("AbCdEfGh12345678", expires=100)
    state.revoke("ZzZzZzZz87654321", expires=2_000_000_000)
    assert state.prune(now=1_000) == 1
    assert list(state.revocations()) == ["ZzZzZzZz87654321"]


@pytest.mark.parametrize("link_id", ["", "short", "../../etc", "a/b/c/d/e", "x" * 65])
def test_a_value_that_is_not_a_link_id_never_names_a_file(tmp_path, link_id):
    with pytest.raises(ValueError):
        LinkState(tmp_path).revoke(link_id, expires=1)
    with pytest.raises(ValueError):
        LinkState(tmp_path).take(link_id, 1, expires=1)
