"""What people see, in a real browser: Debian's headless Chromium, driven through Playwright.

The stack is the real one (nginx in front of gunicorn). The tests assert on what the browser
did (requests made, downloads saved, pages shown), not on pixels; screenshots of failures go
to pytest's temporary folder.
"""

from __future__ import annotations

import io
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from PIL import Image as PillowImage
from playwright.sync_api import sync_playwright

from harness.stack import Stack, running_stack, seed

pytestmark = [pytest.mark.nginx, pytest.mark.browser]


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
NAME = "你好 世界 a+b.png"
ADMIN_PASSWORD = "browser-test-password-1"
OWNER_PASSWORD = "browser-test-password-2"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("var")) as running:
        yield running


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    executable = shutil.which("chromium")
    if executable is None:
        raise RuntimeError("Chromium is not installed: run `make test` (it installs Debian's 'chromium')")
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser, tmp_path: Path) -> Iterator[object]:
    context = browser.new_context(accept_downloads=True)
    opened = context.new_page()
    try:
        yield opened
    finally:
        opened.screenshot(path=str(tmp_path / "last-page.png"))
        context.close()


def upload(stack: Stack, token: str) -> dict:
    """POST a 12x8 PNG named NAME through the API as the token's user; the API's answer and the bytes."""
    buffer = io.BytesIO()
    PillowImage.new("RGB", (12, 8), (0, 90, 200)).save(buffer, format="PNG")
    response = requests.post(f"{stack.base_url}/api/images/", files={"file": (NAME, buffer.getvalue(), "image/png")},
                             headers={"Authorization": f"Token {token}"}, timeout=10)
    assert response.status_code == 201, response.text
    return {**response.json(), "bytes": buffer.getvalue(), "token": token}


@pytest.fixture(scope="module")
def uploaded(stack: Stack) -> dict:
    return upload(stack, seed(stack.env, "--no-images", "--username", "viewer")["token"])


@pytest.fixture(scope="module")
def owned(stack: Stack) -> dict:
    """An image uploaded by its owner, a user with a password who is not staff."""
    seeded = seed(stack.env, "--no-images", "--username", "owner", "--password", OWNER_PASSWORD)
    return upload(stack, seeded["token"])


def log_in(page, username: str, password: str) -> None:
    """Fill in and send the login form the page shows (Django's fields: the admin's or the site's)."""
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("[type=submit]")


def requests_seen(page) -> tuple[list[str], dict[str, str]]:
    """Every URL the page asks for, and those the browser refused to fetch (URL -> reason)."""
    seen: list[str] = []
    refused: dict[str, str] = {}
    page.on("request", lambda request: seen.append(request.url))
    page.on("requestfailed", lambda request: refused.__setitem__(request.url, request.failure or ""))
    return seen, refused


@pytest.mark.parametrize("path, ready", [("/api/docs/", ".swagger-ui .info .title"), ("/api/redoc/", "h1")])
def test_api_docs_render_with_nothing_loaded_from_another_host(stack, page, path, ready):
    seen, refused = requests_seen(page)
    token = seed(stack.env, "--no-images", "--username", "reader")["token"]
    page.set_extra_http_headers({"Authorization": f"Token {token}"})
    page.goto(stack.base_url + path, wait_until="networkidle")
    assert "Signed downloads API" in page.locator(ready).first.inner_text(timeout=15_000)
    foreign = [url for url in seen if url.startswith(("http:", "https:")) and urlsplit(url).netloc != urlsplit(stack.base_url).netloc]
    # ReDoc's bundle hard-codes one image from its maker's CDN; our Content-Security-Policy makes
    # the browser refuse it, so nothing leaves for another host.
    assert seen and {url: refused.get(url) for url in foreign} == {url: "csp" for url in foreign}


def test_a_signed_link_downloads_under_its_unicode_name(stack, page, uploaded, tmp_path):
    with page.expect_download(timeout=15_000) as started:
        page.evaluate("url => { const a = document.createElement('a'); a.href = url; document.body.append(a); a.click(); }",
                      uploaded["download_url"])
    download = started.value
    saved = tmp_path / "saved"
    download.save_as(str(saved))
    assert download.suggested_filename == NAME and saved.read_bytes() == uploaded["bytes"]


def test_an_expired_link_shows_the_friendly_page(stack, page, uploaded):
    path = urlsplit(uploaded["download_url"]).path
    expired = stack.signer(clock=lambda: 1_000_000).sign(path, ttl=60).url
    response = page.goto(stack.base_url + expired)
    assert response.status == 410
    assert page.locator("h1").inner_text() == "This link has expired"
    assert "ask whoever sent it to you for a new link" in page.content()


def test_the_admin_lists_images_with_working_links(stack, page, uploaded):
    seed(stack.env, "--no-images", "--username", "admin", "--staff", "--password", ADMIN_PASSWORD)
    page.goto(stack.base_url + "/admin/login/?next=/admin/downloads/image/")
    log_in(page, "admin", ADMIN_PASSWORD)
    page.wait_for_url("**/admin/downloads/image/")
    links = page.locator("td.field-download a")
    assert links.count() >= 1
    href = links.first.get_attribute("href")
    assert href is not None and "md5=" in href
    fetched = page.request.get(href if "://" in href else stack.base_url + href)
    assert fetched.status == 200 and fetched.body() == uploaded["bytes"]


def test_the_image_page_shows_the_image_by_its_plain_url_through_the_folder_cookie(stack, page, owned):
    page_path = f"/images/{owned['id']}/"
    answers = []
    page.on("response", lambda answer: answers.append(answer))
    page.goto(stack.base_url + page_path)
    assert parse_qs(urlsplit(page.url).query)["next"] == [page_path]  # not logged in: the login, then back
    log_in(page, "owner", OWNER_PASSWORD)
    page.wait_for_url("**" + page_path)
    page.wait_for_function("() => document.getElementById('image').complete")
    assert page.eval_on_selector("#image", "image => image.naturalWidth") == 12
    source = page.eval_on_selector("#image", "image => image.src")
    assert "md5=" not in source and "hmac=" not in source
    assert [answer.status for answer in answers if answer.url == source] == [200]

    folder = urlsplit(source).path.rsplit("/", 1)[0] + "/"
    assert re.fullmatch(r"/media/images/\d{4}/\d{2}/[0-9a-f-]+/", folder), folder
    cookie, = [cookie for cookie in page.context.cookies() if cookie["name"] == "secure_link_folder"]
    assert (cookie["path"], cookie["httpOnly"], cookie["sameSite"]) == (folder, True, "Lax")
    assert cookie["value"].startswith(folder + ":")

    page.context.clear_cookies()
    assert page.goto(source).status == 403
