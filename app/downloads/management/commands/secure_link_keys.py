"""``manage.py secure_link_keys --output FILE``: nginx's keys includes, from Django's settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from app.downloads.conf import current_key_set
from signing.keys import NGINX_HMAC_KEYS_FILE, NGINX_KEYS_FILE, nginx_key_files, write_nginx_keys


class Command(BaseCommand):
    help = (
        "Write nginx's keys includes (FILE for the MD5 keys, secure_link_hmac_keys.conf beside it for the "
        "HMAC-SHA256 keys; mode 0600, atomic replace), or with --check, exit 1 if they differ from the "
        "settings. Prints nothing secret."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", type=Path, required=True, help="e.g. /etc/nginx/secure_link_keys.conf")
        parser.add_argument("--check", action="store_true", help="compare instead of writing")

    def handle(self, *args: Any, **options: Any) -> None:
        key_set = current_key_set()
        kids = ", ".join(key_set.keys)
        try:
            contents = nginx_key_files(key_set)
        except ValueError as error:
            raise CommandError(f"the settings' keys cannot be used: {error}") from None
        output: Path = options["output"]
        files = {output: contents[NGINX_KEYS_FILE], output.with_name(NGINX_HMAC_KEYS_FILE): contents[NGINX_HMAC_KEYS_FILE]}
        if options["check"]:
            for path, content in files.items():
                if not path.exists():
                    raise CommandError(f"{path} does not exist: write it with --output {output} (without --check)")
                if path.read_text(encoding="utf-8") != content:
                    raise CommandError(f"{path} differs from the settings' keys ({kids}): rewrite it and reload nginx")
            self.stdout.write(f"{' and '.join(map(str, files))} match the settings' keys ({kids})")
            return
        try:
            written = write_nginx_keys(output, key_set)
        except OSError as error:
            raise CommandError(f"cannot write {output}: {error.strerror}") from None
        self.stdout.write(f"wrote {len(key_set.keys)} key(s) ({kids}) to {' and '.join(map(str, written))} "
                          "(mode 0600); now reload nginx: nginx -s reload")
