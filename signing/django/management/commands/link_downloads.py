"""``manage.py link_downloads LINK_ID``: who downloaded a link, when, through which verifier."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from signing.django.conf import link_settings
from signing.django.download_log import downloads_of
from signing.django.models import IssuedLink


class Command(BaseCommand):
    help = ("Print a link's download log, built from the verifiers' download logs (SECURE_LINK_DOWNLOAD_LOGS), "
            "oldest first, with a summary.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("link_id", metavar="LINK_ID", help="a link id, as in /api/links/<id>/")
        parser.add_argument("--json", action="store_true", help="one JSON document instead of a table")

    def handle(self, *args: Any, **options: Any) -> None:
        link = IssuedLink.objects.filter(pk=options["link_id"]).first()
        if link is None:
            raise CommandError(f"no link with id {options['link_id']}")
        logs = link_settings().download_logs
        if not logs:
            raise CommandError("no download logs are configured: set SECURE_LINK_DOWNLOAD_LOGS "
                               "(origin=/var/log/nginx/downloads.log,edge-eu=/srv/logs/eu.log)")
        downloads = downloads_of(link.pk, logs)
        files = sum(1 for download in downloads if download.sent_file)
        taken = link.downloads()
        status = link.status(downloads=taken).value
        if options["json"]:
            self.stdout.write(json.dumps({
                "link": link.pk, "subject": link.subject, "status": status,
                "max_downloads": link.max_downloads, "downloads": taken,
                "requests": [{"time": d.time.isoformat(), "verifier": d.verifier, "client": d.client,
                              "status": d.status, "bytes": d.bytes} for d in downloads],
            }, indent=2))
            return
        for download in downloads:
            self.stdout.write(f"{download.time.isoformat()}  {download.verifier:<12} {download.client:<39} "
                              f"{download.status}  {download.bytes} bytes")
        limit = f" of {link.max_downloads} allowed" if link.max_downloads else ""
        self.stdout.write(f"{link} ({status}): {len(downloads)} request(s), "
                          f"{files} sent the file{limit}; read {len(logs)} log(s): {', '.join(n for n, _ in logs)}")
