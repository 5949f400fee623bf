"""Links by their id in the app: minting with a limit or a start, who may see and revoke them,
the revocation list for the verifiers, the operator commands, and Django's own /media/ view
(SERVE_WITH_DJANGO) giving nginx's answers. nginx itself: tests/test_link_control_live.py."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from io import StringIO
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import CommandError, call_command

from signing.django import counting
from signing.django.models import IssuedLink
from signing import LinkNotYetValid
from signing.fleet.protocol import REVOCATIONS_PATH
from tests.app_fixtures import verify_url


def mint(client, image, **options):
    response = client.post(f"/api/images/{image.pk}/links/", options, format="json")
    assert response.status_code == 201, response.data
    return response.data


def test_a_minted_link_is_recorded_by_the_id_signed_into_it(user, make_image, client_for):
    image = make_image(user)
    opens = (datetime.now(timezone.utc) + timedelta(minutes=5)).replace(microsecond=0)
    body = mint(client_for(user), image, max_downloads=3, not_before=opens.isoformat(), ttl=3600)
    query = parse_qs(urlsplit(body["url"]).query)
    assert query["id"] == [body["id"]] and query["limit"] == ["3"] and query["nb"] == [str(int(opens.timestamp()))]
    record = IssuedLink.objects.get(pk=body["id"])
    assert (record.subject, record.owner, record.created_by, record.max_downloads, record.not_before) == (
        f"image:{image.pk}", user, user, 3, opens)
    assert record.path == f"/media/{image.file.name}"
    with pytest.raises(LinkNotYetValid):  # nginx's answer too: 403 until it opens
        verify_url(body["url"])
    detail = client_for(user).get(f"/api/links/{body['id']}/").data
    assert (detail["status"], detail["downloads"], detail["max_downloads"]) == ("not_yet_valid", 0, 3)


@pytest.mark.parametrize("options, field", [({"max_downloads": 0}, "max_downloads"),
                                            ({"max_downloads": 1001}, "max_downloads"),
                                            ({"not_before": "tomorrow"}, "not_before"),
                                            ({"ttl": 60, "not_before": "2099-01-01T00:00:00Z"}, "not_before")])
def test_options_that_cannot_work_get_a_400_naming_the_field(user, make_image, client_for, options, field):
    response = client_for(user).post(f"/api/images/{make_image(user).pk}/links/", options, format="json")
    assert response.status_code == 400 and field in response.data


def test_only_the_owner_and_staff_see_a_link(user, other_user, staff_user, make_image, client_for):
    link = mint(client_for(user), make_image(user))
    assert client_for(user).get(f"/api/links/{link['id']}/").status_code == 200
    assert client_for(staff_user).get(f"/api/links/{link['id']}/").status_code == 200
    assert client_for(other_user).get(f"/api/links/{link['id']}/").status_code == 404
    assert client_for(other_user).post(f"/api/links/{link['id']}/revoke/").status_code == 404
    assert client_for().get(f"/api/links/{link['id']}/").status_code == 401
    assert IssuedLink.objects.get(pk=link["id"]).revoked_at is None


def test_revoking_one_link_records_it_and_leaves_the_others(user, make_image, client_for, tmp_path):
    image, client = make_image(user), client_for(user)
    revoked, kept = mint(client, image), mint(client, image)
    answer = client.post(f"/api/links/{revoked['id']}/revoke/")
    assert answer.status_code == 200 and answer.data["status"] == "revoked" and answer.data["revoked_at"]
    assert IssuedLink.objects.get(pk=revoked["id"]).revoked_at is not None
    assert IssuedLink.objects.get(pk=kept["id"]).revoked_at is None
    alive = [entry["id"] for entry in client.get(f"/api/images/{image.pk}/links/").data]
    assert alive == [kept["id"]]
    assert client.post(f"/api/links/{revoked['id']}/revoke/").status_code == 200  # again: no change, no error


def test_the_verifiers_pull_the_revoked_ids_with_the_fleet_token(client, user, make_image, client_for, settings,
                                                                tmp_path):
    token_file = tmp_path / "fleet_token"
    token_file.write_text("the-fleet-token\n")
    settings.SECURE_LINK = {**settings.SECURE_LINK, "FLEET_TOKEN_FILE": token_file}
    link = mint(client_for(user), make_image(user))
    IssuedLink.objects.get(pk=link["id"]).revoke()
    assert client.get(REVOCATIONS_PATH).status_code == 403
    answer = client.get(REVOCATIONS_PATH, HTTP_AUTHORIZATION="Bearer the-fleet-token")
    assert answer.status_code == 200 and answer["Cache-Control"] == "no-store"
    expires = int(datetime.fromisoformat(link["expires_at"].replace("Z", "+00:00")).timestamp())
    assert json.loads(answer.content) == {"revoked": {link["id"]: expires}}


def test_revoke_link_command_revokes_by_id_and_refuses_unknown_ids(user, make_image, client_for):
    link = mint(client_for(user), make_image(user))
    with pytest.raises(CommandError, match="no link with id ZZZZZZZZZZZZZZZZ"):
        call_command("revoke_link", link["id"], "ZZZZZZZZZZZZZZZZ")
    assert IssuedLink.objects.get(pk=link["id"]).revoked_at is None  # nothing, when one id is wrong
    out = StringIO()
    call_command("revoke_link", link["id"], stdout=out)
    assert f"link {link['id']}" in out.getvalue() and "revoked" in out.getvalue()
    assert IssuedLink.objects.get(pk=link["id"]).revoked_at is not None


def test_the_download_log_is_read_from_the_verifiers_logs(user, make_image, client_for, settings, tmp_path):
    link = mint(client_for(user), make_image(user), max_downloads=2)
    other = mint(client_for(user), make_image(user))
    origin, edge = tmp_path / "origin.log", tmp_path / "edge.log"
    line = '{{"time":"2026-12-02T07:0{m}:00+00:00","link":"{link}","client":"192.0.2.{m}","status":{s},"bytes":{b},"server":"x:1"}}\n'
    origin.write_text(line.format(m=1, link=link["id"], s=200, b=662) + line.format(m=2, link=other["id"], s=200, b=1))
    edge.write_text("not json\n" + line.format(m=3, link=link["id"], s=410, b=72))
    settings.SECURE_LINK = {**settings.SECURE_LINK, "DOWNLOAD_LOGS": [("origin", origin), ("edge-eu", edge)]}
    entries = client_for(user).get(f"/api/links/{link['id']}/downloads/").data
    assert [(e["verifier"], e["client"], e["status"], e["bytes"]) for e in entries] == [
        ("origin", "192.0.2.1", 200, 662), ("edge-eu", "192.0.2.3", 410, 72)]
    out = StringIO()
    call_command("link_downloads", link["id"], stdout=out)
    assert "2 request(s), 1 sent the file of 2 allowed" in out.getvalue()


def test_link_downloads_without_logs_says_what_to_set(user, make_image, client_for):
    link = mint(client_for(user), make_image(user))
    with pytest.raises(CommandError, match="SECURE_LINK_DOWNLOAD_LOGS"):
        call_command("link_downloads", link["id"])


class TestLinkStateWithoutNginx:
    """Django's own /media/ view (SERVE_WITH_DJANGO) refuses as nginx does."""

    @pytest.fixture(autouse=True)
    def serve_with_django(self, settings):
        settings.SECURE_LINK = {**settings.SECURE_LINK, "SERVE_WITH_DJANGO": True}

    def get(self, client, url):
        parts = urlsplit(url)
        return client.get(parts.path, QUERY_STRING=parts.query)

    def test_revoked_is_403_and_used_up_is_410(self, user, make_image, client_for):
        image, client = make_image(user), client_for(user)
        revoked, limited = mint(client, image), mint(client, image, max_downloads=1)
        IssuedLink.objects.get(pk=revoked["id"]).revoke()
        assert self.get(client_for(), revoked["url"]).status_code == 403
        assert self.get(client_for(), limited["url"]).status_code == 200
        assert self.get(client_for(), limited["url"]).status_code == 410

    def test_before_its_start_a_link_is_403(self, user, make_image, client_for):
        opens = datetime.now(timezone.utc) + timedelta(minutes=5)
        link = mint(client_for(user), make_image(user), not_before=opens.isoformat())
        assert self.get(client_for(), link["url"]).status_code == 403


def test_prune_links_drops_the_counts_of_expired_links_only(user, make_image, client_for):
    live = mint(client_for(user), make_image(user), max_downloads=3)
    expires = int(datetime.fromisoformat(live["expires_at"].replace("Z", "+00:00")).timestamp())
    counting.take(counting.LimitedRequest("OldOldOld0000000", 3, 1_000, 0))
    counting.take(counting.LimitedRequest(live["id"], 3, expires, 0))
    out = StringIO()
    call_command("prune_links", stdout=out)
    assert "removed the download counts of 1 expired link(s); 1 still kept" in out.getvalue()
    assert counting.download_counts(["OldOldOld0000000", live["id"]]) == {live["id"]: 1}


@pytest.mark.parametrize("not_before", ["1970-01-01T00:00:00Z", "1960-05-01T00:00:00Z"])
def test_a_start_before_1970_is_a_400_not_a_500(user, make_image, client_for, not_before):
    response = client_for(user).post(f"/api/images/{make_image(user).pk}/links/", {"not_before": not_before},
                                     format="json")
    assert response.status_code == 400 and "not_before" in response.data


def test_links_issued_with_an_expiry_bucket_are_each_their_own(user, make_image, client_for, settings):
    settings.SECURE_LINK = {**settings.SECURE_LINK, "EXPIRY_BUCKET": 300}
    image, client = make_image(user), client_for(user)
    first, second = mint(client, image), mint(client, image)
    assert first["id"] != second["id"]
    assert parse_qs(urlsplit(image_link := client.get(f"/api/images/{image.pk}/").data["download_url"]).query)["id"] \
        != [first["id"]], image_link


class TestGivenBackWithoutNginx:
    @pytest.fixture(autouse=True)
    def serve_with_django(self, settings):
        settings.SECURE_LINK = {**settings.SECURE_LINK, "SERVE_WITH_DJANGO": True}

    def test_a_request_that_sends_no_file_bytes_takes_no_download(self, user, make_image, client_for):
        image = make_image(user)
        link = mint(client_for(user), image, max_downloads=1)
        parts = urlsplit(link["url"])
        assert client_for().head(parts.path, QUERY_STRING=parts.query).status_code == 200
        assert client_for().get(parts.path, QUERY_STRING=parts.query, HTTP_RANGE="bytes=999999-").status_code == 416
        image.file.storage.delete(image.file.name)
        assert client_for().get(parts.path, QUERY_STRING=parts.query).status_code == 404
        assert counting.downloads(link["id"]) == 0


def test_the_admin_lists_each_links_downloads_and_status_from_the_counter(user, make_image, client_for, admin_client):
    image = make_image(user)
    limited = mint(client_for(user), image, max_downloads=2)
    plain = mint(client_for(user), image)
    expires = int(datetime.now(timezone.utc).timestamp()) + 3600
    for _ in range(2):
        counting.take(counting.LimitedRequest(limited["id"], 2, expires, 0))
    page = admin_client.get("/admin/secure_links/issuedlink/").content.decode()
    row = next(line for line in page.split("<tr") if limited["id"] in line)
    assert '"field-downloads">2 / 2<' in row and '"field-status">Used Up<' in row
    other = next(line for line in page.split("<tr") if plain["id"] in line)
    assert '"field-downloads">-<' in other and '"field-status">Active<' in other
    detail = admin_client.get(f"/admin/secure_links/issuedlink/{limited['id']}/change/").content.decode()
    assert "2 / 2" in detail and "Used Up" in detail  # a single link reads its own count
