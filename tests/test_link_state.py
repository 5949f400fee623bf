"""signing.nginx.link_state: the revocations nginx reads, as files a sync agent keeps (no Django,
no nginx here; tests/test_link_control_live.py proves nginx reads the same layout)."""

from __future__ import annotations

import pytest

from signing import LinkState


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
        LinkState(tmp_path).is_revoked(link_id)
