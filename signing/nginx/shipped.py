"""Where the shipped nginx folder is: inside the installed package, or the repository's own.

Apart from :mod:`signing.nginx.install`, so that what reads a shipped file (the Django app's
check of the origin's role file) does not load the installer.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_COPY = Path(__file__).with_name("conf")  # where a wheel puts the repository's nginx/


def shipped_folder() -> Path:
    """The shipped ``nginx/`` folder: inside the installed package, or the repository's own."""
    return _PACKAGE_COPY if _PACKAGE_COPY.is_dir() else Path(__file__).resolve().parents[2] / "nginx"
