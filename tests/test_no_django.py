"""The library's core never imports Django (tests/test_package.py installs it where Django is absent)."""

import subprocess
import sys
from pathlib import Path


def test_the_library_and_every_subpackage_but_signing_django_import_no_django():
    """With Django installed (this repository's venv): nothing but signing.django imports it."""
    code = (
        "import sys, signing, signing.__main__, signing.cli, signing.timed, signing.delivery, signing.key_source,"
        " signing.cdn, signing.cdn.cli, signing.fleet.agent, signing.nginx.install;"
        "leaked = sorted(m for m in sys.modules if m == 'django' or m.startswith(('django.', 'rest_framework')));"
        "print(leaked); sys.exit(1 if leaked else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parent.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "[]"
