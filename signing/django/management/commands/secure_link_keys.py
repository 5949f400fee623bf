"""``manage.py secure_link_keys --output FOLDER``: nginx's keys includes, from Django's settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from signing import KeySetError
from signing.django.conf import current_key_set
from signing.keys import nginx_includes_directory


class Command(BaseCommand):
    help = (
        "Write nginx's keys includes (secure_link_keys.conf for the MD5 keys, secure_link_hmac_keys.conf for the "
        "HMAC-SHA256 keys; mode 0600, atomic replace) into a folder, or with --check, exit 1 if they differ from "
        "the settings. Prints nothing secret."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", type=Path, required=True,
                            help="the folder nginx's main config is in (e.g. /etc/nginx), or its secure_link_keys.conf")
        parser.add_argument("--check", action="store_true", help="compare instead of writing")

    def handle(self, *args: Any, **options: Any) -> None:
        key_set = current_key_set()
        kids = ", ".join(key_set.kids)
        try:
            folder = nginx_includes_directory(options["output"])
        except KeySetError as error:
            raise CommandError(f"--output {error}") from None
        try:
            contents = key_set.nginx_includes()
        except KeySetError as error:
            raise CommandError(f"the settings' keys cannot be used: {error}") from None
        if options["check"]:
            for name, content in contents.items():
                path = folder / name
                if not path.exists():
                    raise CommandError(f"{path} does not exist: write it with --output {folder} (without --check)")
                if path.read_text(encoding="utf-8") != content:
                    raise CommandError(f"{path} differs from the settings' keys ({kids}): rewrite it and reload nginx")
            self.stdout.write(f"{' and '.join(str(folder / name) for name in contents)} match the settings' keys ({kids})")
            return
        try:
            written = key_set.write_nginx_includes(folder)
        except OSError as error:
            raise CommandError(f"cannot write into {folder}: {error.strerror}") from None
        self.stdout.write(f"wrote {len(key_set)} key(s) ({kids}) to {' and '.join(map(str, written))} "
                          "(mode 0600); now reload nginx: nginx -s reload")
