"""``manage.py install_nginx``: put the nginx folder where nginx reads its config, from the settings.

Writes the shipped ``secure_link/`` folder, the role files, the keys includes (the settings'
keys, 0600) and the Lua path into nginx's config folder (default ``/etc/nginx``), then prints
the lines to add to the operator's own ``http`` and ``server`` blocks, with this project's
``MEDIA_ROOT`` and state folder filled in (:mod:`signing.nginx.install`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from signing import KeySetError
from signing.django.conf import current_key_set, link_settings
from signing.nginx.install import ROLE_FILES, install, install_report


class Command(BaseCommand):
    help = ("Write the nginx folder this package ships, the keys includes and the Lua path into nginx's config "
            "folder, and print the lines to add to your own http and server blocks.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--config-folder", type=Path, default=Path("/etc/nginx"),
                            help="the folder of nginx's main config (default /etc/nginx)")
        parser.add_argument("--role", choices=list(ROLE_FILES), default="origin",
                            help="origin (nginx in front of this app, the default) or edge: which lines to print")

    def handle(self, *args: Any, **options: Any) -> None:
        key_set = current_key_set()
        folder: Path = options["config_folder"]
        try:
            install(folder, key_set.check())
        except (KeySetError, ValueError) as error:
            raise CommandError(str(error)) from None
        except OSError as error:
            raise CommandError(f"cannot write into {folder}: {error.strerror or error}") from None
        media_root = Path(settings.MEDIA_ROOT) if settings.MEDIA_ROOT else None
        self.stdout.write(install_report(folder, key_set, role=options["role"], media_root=media_root,
                                         state_root=link_settings().state_dir), ending="")
