"""signing.django.counting: the download counter every origin asks, its rule for Range requests and
resumes, and its two endpoints, on SQLite and on PostgreSQL (``--database=postgresql``). Real
nginx asking it: tests/test_link_control_live.py and tests/test_many_origins.py."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from signing.django import counting
from signing.django.counting import LimitedRequest, Outcome, Taken
from signing.django.models import IssuedLink
from signing.fleet.protocol import SETTLE_PATH, TAKE_PATH
from signing.nginx.counter import DownloadCounter, counter_address, counter_token

pytestmark = pytest.mark.django_db(transaction=True)

LINK = "CountedLink00001"
LATER = int(time.time()) + 3600


def take(limit: int = 2, *, start: int | None = 0, head: bool = False, link_id: str = LINK) -> Taken:
    return counting.take(LimitedRequest(link_id, limit, LATER, start, head=head))


def test_a_limit_gives_that_many_downloads_then_used_up():
    assert [take() for _ in range(3)] == [Taken.COUNTED, Taken.COUNTED, Taken.USED_UP]
    assert counting.downloads(LINK) == 2


def test_a_head_takes_nothing_and_is_refused_once_used_up():
    assert take(1, head=True) is Taken.OPEN
    assert take(1) is Taken.COUNTED
    assert take(1, head=True) is Taken.USED_UP
    assert counting.downloads(LINK) == 1


def test_a_request_that_sent_nothing_gives_its_download_back():
    assert take(1) is Taken.COUNTED
    counting.settle(LINK, Taken.COUNTED, Outcome.NOTHING_SENT)
    assert counting.downloads(LINK) == 0
    assert take(1) is Taken.COUNTED


def test_a_cut_download_leaves_one_credit_from_where_it_stopped_less_the_margin():
    assert take(1) is Taken.COUNTED
    sent = counting.RESUME_MARGIN + 5_000
    counting.settle(LINK, Taken.COUNTED, Outcome.CUT, start=0, sent=sent)
    assert take(1, start=4_999) is Taken.USED_UP  # before the point: a new download, and none is left
    assert take(1, start=None) is Taken.USED_UP  # a multi-range request never resumes
    assert take(1, head=True) is Taken.OPEN  # the credit keeps the link open
    assert take(1, start=5_000) is Taken.RESUMED
    assert take(1, start=5_000) is Taken.USED_UP  # one credit, one resume


def test_a_resume_that_sent_nothing_keeps_its_credit_and_one_cut_again_needs_progress():
    take(1)
    counting.settle(LINK, Taken.COUNTED, Outcome.CUT, start=0, sent=100)  # point 0: all within the margin
    assert take(1, start=0) is Taken.RESUMED
    counting.settle(LINK, Taken.RESUMED, Outcome.NOTHING_SENT)
    assert take(1, start=0) is Taken.RESUMED
    counting.settle(LINK, Taken.RESUMED, Outcome.CUT, start=0, sent=100)  # point 0 again: no progress
    assert take(1, start=0) is Taken.USED_UP


def test_a_request_retried_at_another_origin_is_taken_once_by_its_request_id():
    first, second = "a" * 32, "b" * 32
    limited = LimitedRequest(LINK, 2, LATER, 0, request_id=first)
    assert [counting.take(limited), counting.take(limited)] == [Taken.COUNTED, Taken.COUNTED]
    assert counting.downloads(LINK) == 1  # the edge's retry of the same request took nothing more
    assert counting.take(LimitedRequest(LINK, 2, LATER, 0, request_id=second)) is Taken.COUNTED
    assert counting.take(LimitedRequest(LINK, 2, LATER, 0, request_id="c" * 32)) is Taken.USED_UP
    with pytest.raises(ValueError):
        LimitedRequest(LINK, 2, LATER, 0, request_id="not-hex")


def test_a_first_attempt_that_gives_back_after_its_retry_was_answered_leaves_the_download_to_the_retry():
    edge_id = "d" * 32
    attempt = LimitedRequest(LINK, 1, LATER, 0, request_id=edge_id)
    assert counting.take(attempt) is Taken.COUNTED  # origin A counts, then stalls
    assert counting.take(attempt) is Taken.COUNTED  # the edge's retry at origin B: the same download
    counting.settle(LINK, Taken.COUNTED, Outcome.NOTHING_SENT, request_id=edge_id)  # A gives up: B owns it
    assert counting.downloads(LINK) == 1 and take(1) is Taken.USED_UP
    counting.settle(LINK, Taken.COUNTED, Outcome.NOTHING_SENT, request_id=edge_id)  # B sends nothing either
    assert counting.downloads(LINK) == 0


def test_a_resume_that_sends_less_than_the_margin_earns_no_credit_whatever_byte_it_starts_at():
    take(1)
    counting.settle(LINK, Taken.COUNTED, Outcome.CUT, start=0, sent=5_000)
    for first_byte in (1, 2):  # resuming one byte further each time, cut near the end
        assert take(1, start=first_byte) is (Taken.RESUMED if first_byte == 1 else Taken.USED_UP)
        counting.settle(LINK, Taken.RESUMED, Outcome.CUT, start=first_byte, sent=4_000)


def test_a_revoked_link_is_refused_before_anything_is_counted(django_user_model):
    IssuedLink.objects.create(id=LINK, kid="k1", expires_at="2099-01-01T00:00:00Z", max_downloads=3,
                              revoked_at="2026-01-01T00:00:00Z")
    assert take(3) is Taken.REVOKED
    assert counting.downloads(LINK) == 0


def test_threads_racing_one_link_take_exactly_its_limit():
    if connection.vendor == "sqlite":
        pytest.skip("the test database is SQLite in memory, shared-cache: the race on a SQLite file runs through "
                    "gunicorn and nginx in tests/test_link_control_live.py")
    results: list[Taken] = []
    lock = threading.Lock()

    def race() -> None:
        try:
            outcome = take(5)
        finally:
            connection.close()
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=race) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (results.count(Taken.COUNTED), results.count(Taken.USED_UP)) == (5, 15)


def test_values_nginx_never_sends_are_refused():
    with pytest.raises(ValueError):
        LimitedRequest("../etc", 1, LATER, 0)
    with pytest.raises(ValueError):
        LimitedRequest(LINK, 0, LATER, 0)
    with pytest.raises(ValueError):
        LimitedRequest(LINK, 1, LATER, -1)


@pytest.fixture
def fleet_token(settings, tmp_path):
    token_file = tmp_path / "fleet_token"
    token_file.write_text("the-fleet-token\n")
    settings.SECURE_LINK = {**settings.SECURE_LINK, "FLEET_TOKEN_FILE": token_file}
    return "the-fleet-token"


def test_the_endpoints_answer_the_counter_token_only_never_the_fleet_token(client, fleet_token):
    query = f"?id={LINK}&limit=1&expires={LATER}&start=0"
    assert client.post(TAKE_PATH + query).status_code == 403
    assert client.post(TAKE_PATH + query, HTTP_AUTHORIZATION=f"Bearer {fleet_token}").status_code == 403
    good = {"HTTP_AUTHORIZATION": f"Bearer {counter_token(fleet_token)}"}
    assert client.get(TAKE_PATH + query, **good).status_code == 405
    first = client.post(TAKE_PATH + query, **good)
    assert (first.status_code, first.content, first["Cache-Control"]) == (200, b"counted\n", "no-store")
    assert client.post(TAKE_PATH + query, **good).status_code == 410
    assert client.post(SETTLE_PATH + f"?id={LINK}&took=counted&outcome=none", **good).status_code == 204
    assert client.post(TAKE_PATH + query, **good).content == b"counted\n"
    for bad in ("?id=x&limit=1&expires=1", f"?id={LINK}&limit=x&expires=1", f"?id={LINK}&limit=1"):
        assert client.post(TAKE_PATH + bad, **good).status_code == 400
    assert client.post(SETTLE_PATH + f"?id={LINK}&took=used_up&outcome=none", **good).status_code == 400


def test_without_a_fleet_token_the_endpoints_do_not_exist(client):
    assert client.post(TAKE_PATH + f"?id={LINK}&limit=1&expires={LATER}").status_code == 404


def test_the_installer_takes_app_servers_by_address_and_derives_the_token():
    counter = DownloadCounter.of(["http://10.0.0.5:8000", "http://[::1]:8001/", "unix:/run/app.sock"], "fleet")
    assert counter.urls == ("http://10.0.0.5:8000", "http://[::1]:8001", "unix:/run/app.sock")
    assert "fleet" not in counter.render() and counter_token("fleet") in counter.render()
    assert "fleet" not in repr(counter) and counter.token not in repr(counter)
    for url in ("http://app.internal:8000", "https://10.0.0.5:8000", "http://10.0.0.5", "unix:/a b"):
        with pytest.raises(ValueError, match="counter"):
            counter_address(url)


def test_the_wsgi_fast_path_answers_the_counter_before_django_and_passes_everything_else_on(fleet_token):
    from signing.django.counter_http import counter_fast_path

    passed_on: list[str] = []

    def django(environ, start_response):
        passed_on.append(environ["PATH_INFO"])
        start_response("200 OK", [])
        return [b"django"]

    application = counter_fast_path(django)
    answers: list[str] = []

    def call(path: str, query: str = "", method: str = "POST", token: str = counter_token(fleet_token)) -> bytes:
        environ = {"PATH_INFO": path, "QUERY_STRING": query, "REQUEST_METHOD": method,
                   "HTTP_AUTHORIZATION": f"Bearer {token}"}
        body = b"".join(application(environ, lambda status, headers: answers.append(status)))
        return body

    query = f"id={LINK}&limit=1&expires={LATER}&start=0"
    assert call(TAKE_PATH, query) == b"counted\n" and answers[-1] == "200 OK"
    assert call(TAKE_PATH, query) == b"used_up\n" and answers[-1] == "410 Gone"
    assert call(TAKE_PATH, query, token=fleet_token) and answers[-1] == "403 Forbidden"
    assert call(TAKE_PATH, query, method="GET") and answers[-1] == "405 Method Not Allowed"
    assert call(SETTLE_PATH, f"id={LINK}&took=counted&outcome=none") == b"" and answers[-1] == "204 No Content"
    assert counting.downloads(LINK) == 0
    assert call("/api/images/") == b"django" and passed_on == ["/api/images/"]


def test_the_counter_views_answer_under_a_prefix_a_project_mounts_them_at(fleet_token):
    from django.test import RequestFactory

    from signing.django.views import take_download

    request = RequestFactory().post(f"/downloads-app{TAKE_PATH}?id={LINK}&limit=1&expires={LATER}&start=0",
                                    HTTP_AUTHORIZATION=f"Bearer {counter_token(fleet_token)}")
    answer = take_download(request)
    assert (answer.status_code, answer.content) == (200, b"counted\n")
