"""The distribution, tried as a Django developer and an operator would, outside this repository.

A wheel is built from a clean copy of the repository's tracked files and installed into a fresh
virtualenv in a temporary folder: first alone (the library imports without Django), then with
its ``django`` extra into a project made by ``django-admin startproject`` with exactly the
README's settings lines, whose ``FileField.url`` a real nginx, running the folder that
``manage.py install_nginx`` wrote from the installed package, answers 200, 403 and 410. The
same folder is installed under Debian's layout (a copy of ``/etc/nginx``, no ``-p``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.nginx import REPO_ROOT, nginx_binary
from harness.ports import free_port, stop_process, wait_for_port
from signing import HMAC_SHA256, Key, KeySet, SecureLinkSigner, generate_secret
from tests.client import fetch

pytestmark = [pytest.mark.nginx, pytest.mark.package]

MODULES = "/usr/lib/nginx/modules"


def run(*command: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    """Run a command; its output, or a failure that shows what it printed."""
    result = subprocess.run([str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, f"{' '.join(map(str, command))} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def clean_checkout(destination: Path) -> Path:
    """The repository's tracked files as they are now, nothing else (no .venv, var/ or caches)."""
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True).stdout
    for name in tracked.decode().split("\0"):
        if name and (REPO_ROOT / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / name, destination / name)
    return destination


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    checkout = clean_checkout(tmp_path_factory.mktemp("checkout"))
    wheels = tmp_path_factory.mktemp("wheels")
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", wheels, ".",
        cwd=checkout)
    (built,) = wheels.glob("signed_downloads-*.whl")
    return built


@pytest.fixture
def project_venv(tmp_path: Path) -> Path:
    """A fresh virtualenv outside the repository (its python, with pip)."""
    venv.create(tmp_path / "venv", with_pip=True)
    return tmp_path / "venv" / "bin" / "python"


def outside_env() -> dict[str, str]:
    """An environment that knows nothing of this repository or its settings."""
    return {key: value for key, value in os.environ.items()
            if not key.startswith(("DJANGO_", "SECURE_LINK_", "PYTHON", "VIRTUAL_ENV", "APP_", "MEDIA_"))}


def test_the_wheel_holds_the_library_the_django_app_and_the_nginx_folder(wheel):
    import zipfile

    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in ("signing/__init__.py", "signing/py.typed", "signing/django/migrations/0001_initial.py",
                     "signing/nginx/conf/secure_link.conf", "signing/nginx/conf/secure_link/http/lua.conf",
                     "signing/nginx/conf/secure_link/lua/hmac.lua", "signing/nginx/conf/templates/origin-site.conf"):
        assert expected in names
    assert not [name for name in names if name.startswith(("app/", "tests/", "harness/", "benchmarks/"))]


def test_without_the_extra_the_library_imports_with_no_django(wheel, project_venv, tmp_path):
    run(project_venv, "-m", "pip", "install", "--quiet", wheel, cwd=tmp_path, env=outside_env())
    code = ("import sys, signing, signing.cli, signing.cdn, signing.delivery, signing.fleet.agent, signing.nginx.install;"
            "print(signing.__version__, sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'rest_framework')))")
    version, leaked = run(project_venv, "-c", code, cwd=tmp_path, env=outside_env()).split(" ", 1)
    assert leaked.strip() == "[]" and version == __import__("signing").__version__
    assert run(project_venv, "-c", "import importlib.util; print(importlib.util.find_spec('django'))", cwd=tmp_path,
               env=outside_env()).strip() == "None"
    # The installer finds the folder inside the installed package, not in a checkout.
    keys = tmp_path / "keys"
    keys.write_text(KeySet((Key("k1", generate_secret()),)).render())
    printed = run(project_venv, "-m", "signing", "install-nginx", "--keys-file", keys, "--config-folder", tmp_path / "etc",
                  cwd=tmp_path, env=outside_env())
    assert "include secure_link/http/origin.conf;" in printed and (tmp_path / "etc/secure_link/lua/hmac.lua").is_file()


def readme_block(name: str) -> str:
    """The README's python block between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``, exactly
    ("settings": the lines of "In your own Django project"; "urls": its URLconf lines)."""
    readme = (REPO_ROOT / "README.md").read_text()
    block = re.search(rf"<!-- {name}:start -->\n```python\n(.*?)```\n<!-- {name}:end -->", readme, re.S)
    assert block, f"README.md lost its {name} block"
    return block.group(1)


@pytest.fixture
def new_project(wheel, project_venv, tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """``django-admin startproject mysite`` with the README's lines and a model with a FileField."""
    run(project_venv, "-m", "pip", "install", "--quiet", f"{wheel}[django]", cwd=tmp_path, env=outside_env())
    bin_dir = project_venv.parent
    run(bin_dir / "django-admin", "startproject", "mysite", cwd=tmp_path, env=outside_env())
    project = tmp_path / "mysite"
    settings = project / "mysite" / "settings.py"
    settings.write_text(settings.read_text() + "\n" + readme_block("settings") + 'INSTALLED_APPS += ["documents"]\n')
    urls = project / "mysite" / "urls.py"
    urls.write_text(urls.read_text().replace("from django.urls import path", "from django.urls import include, path")
                    .replace("urlpatterns = [", "urlpatterns = [\n    " + readme_block("urls").strip()))
    (project / "documents" / "migrations").mkdir(parents=True)
    (project / "documents" / "__init__.py").write_text("")
    (project / "documents" / "migrations" / "__init__.py").write_text("")
    (project / "documents" / "models.py").write_text(
        "from django.db import models\n\n\nclass Document(models.Model):\n    file = models.FileField()\n")
    yield project, project_venv


def test_a_new_django_project_gets_working_links_from_the_readme_lines(new_project, tmp_path):
    project, python = new_project
    env = outside_env()

    def manage(*args: str | Path) -> str:
        return run(python, "manage.py", *args, cwd=project, env=env)

    assert "created the first key, k1 (md5)" in manage("rotate_key", "add")
    manage("makemigrations", "documents")
    manage("migrate", "--noinput")
    conf = tmp_path / "nginx"
    printed = manage("install_nginx", "--config-folder", conf)
    nginx = start_nginx_with_printed_lines(conf, printed)
    try:
        base = f"http://127.0.0.1:{nginx[1]}"
        links = json.loads(manage("shell", "-c", SAVE_AND_SIGN).splitlines()[-1])
        assert (fetch(base, links["url"]).status, fetch(base, links["url"]).body) == (200, b"hello, nginx\n")
        assert fetch(base, links["url"].replace("&expires=", "&expires=1")).status == 403
        assert fetch(base, links["expired"]).status == 410
        assert fetch(base, links["internal"]).status == 404
        assert "all 5 probes passed" in manage("check_secure_link", "--base-url", base)
        assert "added md5 key k2 (not signing yet)" in manage("rotate_key", "add")
        status = manage("rotate_key", "status")
        assert "k1 (md5): active (signs new links)" in status and "k2 (md5): added, not signing yet" in status
    finally:
        stop_process(nginx[0])
    # Nothing of this repository's demo project is importable there.
    missing = subprocess.run([python, "-c", "import app"], cwd=project, env=env, capture_output=True, text=True)
    assert missing.returncode == 1 and "No module named 'app'" in missing.stderr
    assert str(REPO_ROOT) not in run(python, "-c", "import signing; print(signing.__file__)", cwd=project, env=env)


# Saved through the project's own model and storage; its URL, an expired link and the internal location.
SAVE_AND_SIGN = """
import json, time
from django.core.files.base import ContentFile
from documents.models import Document
from signing import SecureLinkSigner
from signing.django.conf import current_key_set
document = Document.objects.create(file=ContentFile(b"hello, nginx\\n", name="hello world.txt"))
past = SecureLinkSigner(current_key_set(), clock=lambda: time.time() - 3600).sign("/media/" + document.file.name, ttl=60)
print(json.dumps({"url": document.file.url, "expired": past.url, "internal": "/_protected/media/" + document.file.name}))
"""


def printed_block(printed: str, heading: str) -> str:
    """The indented lines the installer printed under ``heading``."""
    lines = printed.splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith(heading)) + 1
    block = []
    for line in lines[start:]:
        if not line.startswith("    "):
            break
        block.append(line.strip())
    return "\n".join(block)


def start_nginx_with_printed_lines(conf: Path, printed: str) -> tuple[subprocess.Popen[bytes], int]:
    """An operator's own main config around the lines the installer printed, nginx started on it."""
    port = free_port()
    user = "user root root;\n" if os.geteuid() == 0 else ""
    server_lines = printed_block(printed, "In the server { }").replace("/var/log/nginx/", f"{conf}/")
    (conf / "nginx.conf").write_text(
        f"load_module {MODULES}/ndk_http_module.so;\nload_module {MODULES}/ngx_http_lua_module.so;\n{user}"
        f"pid {conf}/nginx.pid;\nevents {{ worker_connections 64; }}\n"
        f"http {{\n    include /etc/nginx/mime.types;\n    {printed_block(printed, 'In http { }')}\n"
        f"    server {{\n        listen 127.0.0.1:{port};\n        {server_lines}\n"
        f"        location / {{ return 404; }}\n    }}\n}}\n")
    process = subprocess.Popen([nginx_binary(), "-p", conf, "-c", "nginx.conf", "-e", conf / "error.log", "-g",
                                "daemon off;"], stdin=subprocess.DEVNULL)
    wait_for_port("127.0.0.1", port, process)
    return process, port


def debian_layout(etc: Path) -> Path:
    """A copy of this machine's /etc/nginx (Debian's), its absolute paths moved into ``etc``, its
    default site replaced: the stock main config, whose prefix stays Debian's /usr/share/nginx."""
    shutil.copytree("/etc/nginx", etc, symlinks=True)
    main = (etc / "nginx.conf").read_text()
    main = main.replace("/etc/nginx/", f"{etc}/").replace("/run/nginx.pid", f"{etc}/nginx.pid")
    main = main.replace("/var/log/nginx/", f"{etc}/")
    main = re.sub(r"^user \S+;", "user root;" if os.geteuid() == 0 else "", main, flags=re.M)
    (etc / "nginx.conf").write_text(main)
    for site in (etc / "sites-enabled").iterdir():
        site.unlink()
    return etc


def test_the_installed_folder_runs_under_debians_layout_without_a_prefix(tmp_path, media_root):
    port = free_port()
    etc = debian_layout(tmp_path / "etc-nginx")
    keys = KeySet((Key("k1", generate_secret()), Key("h1", generate_secret(), HMAC_SHA256)), "k1")
    (tmp_path / "keys").write_text(keys.render())
    printed = run(sys.executable, "-m", "signing", "install-nginx", "--keys-file", tmp_path / "keys",
                  "--config-folder", etc, "--media-root", media_root, "--state-root", tmp_path / "state", cwd=REPO_ROOT)
    (etc / "conf.d" / "secure_link.conf").write_text(printed_block(printed, "In http { }") + "\n")
    server_lines = printed_block(printed, "In the server { }").replace("/var/log/nginx/", f"{etc}/")
    (etc / "sites-enabled" / "files").write_text(
        f"server {{\n    listen 127.0.0.1:{port};\n{server_lines}\n    location / {{ return 404; }}\n}}\n")
    (tmp_path / "state" / "revoked").mkdir(parents=True)
    # No -p: nginx's prefix is the one Debian built it with; -c names the copy of /etc/nginx.
    run(nginx_binary(), "-t", "-q", "-c", etc / "nginx.conf", "-e", etc / "error.log", cwd=tmp_path)
    process = subprocess.Popen([nginx_binary(), "-c", etc / "nginx.conf", "-e", etc / "error.log", "-g", "daemon off;"],
                               stdin=subprocess.DEVNULL)
    try:
        wait_for_port("127.0.0.1", port, process)
        base = f"http://127.0.0.1:{port}"
        for kid in ("k1", "h1"):  # MD5 in nginx's stock module, HMAC-SHA256 in Lua
            link = SecureLinkSigner(keys.with_active(kid)).sign("/media/files/other.bin", ttl=60)
            answer = fetch(base, link.url)
            assert (kid, answer.status, answer.body) == (kid, 200, b"another file")
            assert fetch(base, link.url.replace("&expires=", "&expires=1")).status == 403
    finally:
        stop_process(process)
    # Installed into a staging folder, copied to the config folder, the staging folder removed: the
    # Lua path leads nowhere, and the config test says so in one line naming where it looked.
    staging = tmp_path / "staging"
    run(sys.executable, "-m", "signing", "install-nginx", "--keys-file", tmp_path / "keys", "--config-folder", staging,
        cwd=REPO_ROOT)
    shutil.copyfile(staging / "secure_link_lua.conf", etc / "secure_link_lua.conf")
    shutil.rmtree(staging)
    result = subprocess.run([nginx_binary(), "-t", "-c", etc / "nginx.conf", "-e", etc / "error.log"],
                            capture_output=True, text=True)
    assert result.returncode == 1
    said = [line for line in result.stderr.splitlines() if "[emerg]" in line]
    assert len(said) == 1 and f"{staging}/secure_link/lua/package_path.conf" in said[0], result.stderr
    assert "secure_link_lua.conf" in said[0]
    # A Lua path edited by hand that leads nowhere: nginx refuses to start, in one line that says what to do.
    (etc / "secure_link_lua.conf").write_text('lua_package_path "/nonexistent/?.lua;;";\n')
    started = subprocess.run([nginx_binary(), "-c", etc / "nginx.conf", "-e", etc / "error.log", "-g", "daemon off;"],
                             capture_output=True, text=True, timeout=30)
    assert started.returncode == 1
    said = [line for line in started.stderr.splitlines() if "is not on the lua_package_path" in line]
    assert len(said) == 1 and "secure_link/lua/hmac.lua" in said[0] and "install_nginx" in said[0], started.stderr
