"""The key set the verifiers' sync agents pull: only with the fleet token, never cached."""

from __future__ import annotations

import pytest

from signing import KeySet
from signing.fleet.protocol import KEYS_PATH


@pytest.fixture
def fleet_token(settings, tmp_path) -> str:
    path = tmp_path / "fleet_token"
    path.write_text("a-fleet-token-of-the-verifiers\n")
    settings.SECURE_LINK = {**settings.SECURE_LINK, "FLEET_TOKEN_FILE": path}
    return "a-fleet-token-of-the-verifiers"


def test_without_a_fleet_token_configured_there_is_nothing_to_pull(client, settings, tmp_path):
    settings.SECURE_LINK = {**settings.SECURE_LINK, "FLEET_TOKEN_FILE": tmp_path / "missing"}
    assert client.get(KEYS_PATH, HTTP_AUTHORIZATION="Bearer anything").status_code == 404


@pytest.mark.parametrize("header", [None, "Bearer wrong", "a-fleet-token-of-the-verifiers", "Bearer "])
def test_a_missing_or_wrong_token_is_403(client, fleet_token, header):
    extra = {"HTTP_AUTHORIZATION": header} if header is not None else {}
    response = client.get(KEYS_PATH, **extra)
    assert response.status_code == 403 and b"secret" not in response.content.lower()


def test_the_token_gets_every_key_and_no_signing_choice(client, fleet_token, settings):
    response = client.get(KEYS_PATH, HTTP_AUTHORIZATION=f"Bearer {fleet_token}")
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    served = KeySet.parse(response.content.decode())
    assert served.keys == settings.SECURE_LINK["KEYS"].keys and served.active_kid is None
    assert "active:" not in response.content.decode()


def test_a_fleet_token_replaced_on_disk_counts_from_the_next_request(client, fleet_token, settings):
    from signing.django.views import fleet_token as configured_token

    assert configured_token() == fleet_token
    settings.SECURE_LINK["FLEET_TOKEN_FILE"].write_text("another-token-of-the-fleet\n")  # read once, then cached
    assert configured_token() == "another-token-of-the-fleet"
    assert client.get(KEYS_PATH, HTTP_AUTHORIZATION=f"Bearer {fleet_token}").status_code == 403
    assert client.get(KEYS_PATH, HTTP_AUTHORIZATION="Bearer another-token-of-the-fleet").status_code == 200
