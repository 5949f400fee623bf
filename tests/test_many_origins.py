"""Any number of origins and app servers, with no state in one box (docs/scaling.md), against real
processes: two origin nginx fetching from a SeaweedFS bucket, two gunicorn app servers on a
PostgreSQL cluster this module starts, an edge balancing across both origins, and a sync agent
beside each nginx. Download limits are counted once across every origin, revocations reach
every origin as they reach the edges, and an origin, or the counting database, can fail without
a wrong answer.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed

import pytest
import requests

from harness.fleet import Cluster, running_cluster
from signing import SecureLinkSigner
from harness.nginx import NginxServer
from harness.postgres import PostgresCluster, running_postgres
from harness.seaweedfs import SeaweedFS, start_seaweedfs
from harness.stack import manage, seed
from tests.client import Response, fetch, first_demo_image, link_api as app_link_api, mint_link
from tests.client import request_target as target

pytestmark = pytest.mark.nginx

AGENT_INTERVAL = 0.5
FLEET_BOUND = 3.0  # agent interval + one pull, with room for a loaded machine


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresCluster]:
    """A cluster of this module's own, whatever --database says: a test stops and starts it."""
    with running_postgres() as cluster:
        yield cluster


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    weed = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    try:
        yield weed
    finally:
        weed.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, postgres: PostgresCluster, storage: SeaweedFS) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("var"), storage=storage, database_url=postgres.create_database("many"),
                         interval=AGENT_INTERVAL) as running:
        yield running


@pytest.fixture(scope="module")
def demo(cluster: Cluster) -> dict:
    return seed(cluster.env)


@pytest.fixture(scope="module")
def image(cluster: Cluster, demo: dict) -> dict:
    return first_demo_image(cluster.app_url(), cluster.origins[0].base_url, demo)


def mint(cluster: Cluster, demo: dict, image: dict, **options: object) -> dict:
    return mint_link(cluster.app_url(), demo, image, **options)


def link_api(cluster: Cluster, demo: dict, link_id: str, action: str = "", app: int = 0) -> requests.Response:
    return app_link_api(cluster.app_url(app), demo, link_id, action)


def ask(server: NginxServer, link: dict, **options: object) -> Response:
    return fetch(server.base_url, target(link["url"]), **options)  # type: ignore[arg-type]


def servers(cluster: Cluster) -> list[NginxServer]:
    return list(cluster.verifiers.values())


def race(cluster: Cluster, link: dict, clients: int, *, midway=None) -> list[tuple[str, int | str, bytes]]:
    """``clients`` downloads of ``link`` at once, spread over both origins and the edge; ``midway()``
    runs once a third of them have answered. Returns (server, status or error, body) per client."""
    names = list(cluster.verifiers)
    results: list[tuple[str, int | str, bytes]] = []

    def download(index: int) -> tuple[str, int | str, bytes]:
        name = names[index % len(names)]
        try:
            answer = ask(cluster.verifiers[name], link)
            return name, answer.status, answer.body
        except OSError as error:
            return name, type(error).__name__, b""

    with ThreadPoolExecutor(max_workers=10) as pool:
        futures = [pool.submit(download, index) for index in range(clients)]
        for done, future in enumerate(as_completed(futures), 1):
            results.append(future.result())
            if midway is not None and done == clients // 3:
                midway()
    return results


def test_thirty_clients_racing_a_five_download_link_over_both_origins_and_the_edge_get_exactly_five_files(
        cluster, demo, image):
    link = mint(cluster, demo, image, max_downloads=5)
    results = race(cluster, link, 30)
    statuses = Counter(status for _, status, _ in results)
    print(f"race: {dict(statuses)}")
    assert statuses == {200: 5, 410: 25}, statuses
    assert all(body == image["bytes"] for _, status, body in results if status == 200)
    assert link_api(cluster, demo, link["id"], app=1).json()["downloads"] == 5  # the count the check used


def test_with_one_origin_killed_in_the_middle_of_the_race_never_more_than_five_files(cluster, demo, image):
    link = mint(cluster, demo, image, max_downloads=5)
    try:
        results = race(cluster, link, 30, midway=lambda: cluster.kill_origin(1))
        files = [name for name, status, body in results if status == 200 and body == image["bytes"]]
        print(f"race with origin 2 killed: {len(files)} files, {dict(Counter(status for _, status, _ in results))}")
        assert len(files) <= 5, Counter(status for _, status, _ in results)
        assert len(files) >= 4  # at most the one download the killed origin had counted is lost
        assert {status for _, status, _ in results} <= {200, 410, 502, "ConnectionRefusedError", "RemoteDisconnected",
                                                         "ConnectionResetError", "BadStatusLine"}
        assert link_api(cluster, demo, link["id"]).json()["downloads"] == 5
    finally:
        cluster.origins[1].restart()


def test_a_limit_used_up_through_one_origin_is_used_up_at_the_other_and_the_edge(cluster, demo, image):
    link = mint(cluster, demo, image, max_downloads=2)
    first, second = cluster.origins
    assert [ask(first, link).status, ask(first, link).status] == [200, 200]
    assert [ask(second, link).status, ask(cluster.edge, link).status] == [410, 410]


def test_a_link_revoked_through_one_app_server_is_refused_at_both_origins_and_the_edge_within_the_bound(
        cluster, demo, image):
    link, limited, kept = (mint(cluster, demo, image), mint(cluster, demo, image, max_downloads=9),
                           mint(cluster, demo, image))
    assert all(ask(server, entry).status == 200 for server in servers(cluster) for entry in (link, limited, kept))
    started = time.monotonic()
    for entry in (link, limited):
        assert link_api(cluster, demo, entry["id"], "revoke", app=1).status_code == 200
    # A limited link is refused at every origin at once: the counter reads the revocation.
    assert [ask(server, limited).status for server in servers(cluster)] == [403, 403, 403]
    refused_after = {}
    while len(refused_after) < len(cluster.verifiers):
        for name, server in cluster.verifiers.items():
            if name not in refused_after and ask(server, link).status == 403:
                refused_after[name] = time.monotonic() - started
        assert time.monotonic() - started < FLEET_BOUND, f"still served after {FLEET_BOUND} s: {refused_after}"
        time.sleep(0.02)
    print(f"revocation reached: {', '.join(f'{name} {seconds:.2f} s' for name, seconds in refused_after.items())}")
    assert all(ask(server, kept).status == 200 for server in servers(cluster))


def test_a_limited_link_keeps_its_downloads_while_the_object_is_missing(cluster, demo, storage):
    url = target(SecureLinkSigner(cluster.key_set()).sign("/media/files/later.bin", ttl=300, max_downloads=2).url)
    first, second = cluster.origins
    assert [fetch(server.base_url, url).status for server in (first, second, cluster.edge)] == [404, 404, 404]
    storage.client("app").put_object(Bucket=storage.bucket().name, Key="files/later.bin", Body=b"now here")
    time.sleep(0.5)  # the give-backs reach the counter after each answer

    def statuses() -> list[int]:
        return [fetch(server.base_url, url).status for server in (first, second, first)]

    assert statuses() == [200, 200, 410]


def test_one_origin_stopped_during_downloads_through_the_edge_gives_no_wrong_answer(cluster, demo, image):
    """Three threads through the edge for 8 s: old links, links minted meanwhile (after a key rotation)
    and download-limited ones (which always reach an origin), one revoked link; origin 2 stops at 4 s."""
    old = mint(cluster, demo, image)
    revoked = mint(cluster, demo, image)
    link_api(cluster, demo, revoked["id"], "revoke")
    time.sleep(FLEET_BOUND)
    fresh: list[dict] = [mint(cluster, demo, image)]
    wrong: list[str] = []
    answers: Counter[str] = Counter()
    stop = threading.Event()

    def judge(kind: str, answer: Response | None, error: str = "") -> None:
        status = answer.status if answer is not None else error
        answers[f"{kind} {status}"] += 1
        if kind == "revoked":
            ok = status == 403
        else:
            ok = status == 200 and answer is not None and answer.body == image["bytes"]
        if not ok:
            wrong.append(f"{kind}: {status}")

    def client(kind: str) -> None:
        while not stop.is_set():
            link = {"old": lambda: old, "fresh": lambda: fresh[-1], "revoked": lambda: revoked}[kind]()
            try:
                judge(kind, ask(cluster.edge, link))
            except OSError as error:
                judge(kind, None, type(error).__name__)

    def limited_client() -> None:
        while not stop.is_set():
            link = mint(cluster, demo, image, max_downloads=1)
            try:
                judge("limited", ask(cluster.edge, link))
            except OSError as error:
                judge("limited", None, type(error).__name__)

    threads = [threading.Thread(target=client, args=("old",)), threading.Thread(target=client, args=("revoked",)),
               threading.Thread(target=limited_client), threading.Thread(target=client, args=("fresh",))]
    for thread in threads:
        thread.start()
    try:
        manage(cluster.env, "rotate_key", "add", "k5")
        manage(cluster.env, "rotate_key", "activate", "k5")  # waits until every verifier accepts it
        deadline = time.monotonic() + 5  # app servers follow the keys file within a second or two
        while "kid=k5" not in fresh[-1]["url"]:
            assert time.monotonic() < deadline, "the app servers still sign with the old key"
            fresh.append(mint(cluster, demo, image))
        time.sleep(2)
        cluster.origins[1].stop()
        time.sleep(4)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        cluster.origins[1].restart()
    print(f"answers: {dict(answers)}")
    assert wrong == [], Counter(wrong)
    assert answers["limited 200"] > 10 and answers["old 200"] > 10 and answers["revoked 403"] > 10


def test_the_counting_database_restarted_refuses_limited_links_meanwhile_and_counts_exactly_after(
        cluster, demo, image, postgres):
    limited, plain = mint(cluster, demo, image, max_downloads=3), mint(cluster, demo, image)
    assert ask(cluster.origins[0], limited).status == 200
    postgres.stop_server()
    try:
        during = [ask(server, limited).status for server in servers(cluster) for _ in range(2)]
        assert during == [503] * 6
        assert all(ask(server, plain).body == image["bytes"] for server in servers(cluster))  # never asks the database
    finally:
        postgres.start_server()
    after = [ask(server, limited).status for server in servers(cluster)]
    assert sorted(after) == [200, 200, 410]
    assert link_api(cluster, demo, limited["id"]).json()["downloads"] == 3
