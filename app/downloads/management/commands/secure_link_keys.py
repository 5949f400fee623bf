"""``manage.py secure_link_keys --output FILE``: nginx's keys include, from Django's settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from app.downloads.conf import current_key_set
from signing import render_nginx_keys
from signing.keys import write_private_file


class Command(BaseCommand):
    help = (
        "Write the nginx include that maps key ids to secrets (mode 0600, atomic replace), "
        "or with --check, exit 1 if FILE differs from the settings. Prints nothing secret."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", type=Path, required=True, help="e.g. /etc/nginx/secure_link_keys.conf")
        parser.add_argument("--check", action="store_true", help="compare instead of writing")

    def handle(self, *args: Any, **options: Any) -> None:
        keys = current_key_set().keys
        try:
            content = render_nginx_keys(keys)
        except ValueError as error:
            raise CommandError(f"the settings' keys cannot be used: {error}") from None
        output: Path = options["output"]
        if options["check"]:
            current = output.read_text(encoding="utf-8") if output.exists() else None
            if current != content:
                raise CommandError(f"{output} differs from the settings' keys ({', '.join(keys)}): rewrite it and reload nginx")
            self.stdout.write(f"{output} matches the settings' keys ({', '.join(keys)})")
            return
        try:
            write_private_file(output, content)
        except OSError as error:
            raise CommandError(f"cannot write {output}: {error.strerror}") from None
        self.stdout.write(f"wrote {len(keys)} key(s) ({', '.join(keys)}) to {output} (mode 0600); now reload nginx: nginx -s reload")
