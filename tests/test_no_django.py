import subprocess
import sys
from pathlib import Path


def test_signing_imports_no_django():
    code = (
        "import sys, signing, signing.__main__, signing.timed;"
        "leaked = sorted(m for m in sys.modules if m == 'django' or m.startswith(('django.', 'rest_framework')));"
        "print(leaked); sys.exit(1 if leaked else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parent.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "[]"
