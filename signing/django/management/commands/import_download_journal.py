"""``manage.py import_download_journal FILE``: carry the counts of an origin's old download journal
into the counter (an upgrade from the versions that counted in nginx; docs/per-link.md).

The journal (``$secure_link_state_root/downloads.journal``) holds one line per change,
``LINK_ID +1 EXPIRES`` or ``LINK_ID -1 EXPIRES``; a link's count is the sum of its lines. Links
that have expired are skipped; a link the counter already knows keeps the larger count, so
running it twice, or for the journals of two origins in turn, never lowers a count.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from signing.django.models import DownloadCount
from signing.nginx.signed_string import LINK_ID_PATTERN


class Command(BaseCommand):
    help = "Carry the download counts of an origin's old downloads.journal into the database's counter."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("journal", type=Path, help="the journal, e.g. /var/lib/secure_link/downloads.journal")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["journal"]
        counts: dict[str, int] = {}
        expiry: dict[str, int] = {}
        skipped = 0
        try:
            with open(path, encoding="ascii", errors="replace") as journal:
                for line in journal:
                    link_id, delta, expires = (line.split() + ["", "", ""])[:3]
                    if not LINK_ID_PATTERN.fullmatch(link_id) or delta not in ("+1", "-1") or not expires.isdigit():
                        skipped += 1
                        continue
                    counts[link_id] = counts.get(link_id, 0) + int(delta)
                    expiry[link_id] = int(expires)
        except OSError as error:
            raise CommandError(f"cannot read {path}: {error.strerror or error}") from None
        now = time.time()
        live = {link_id: count for link_id, count in counts.items() if count > 0 and expiry[link_id] >= now}
        raised = 0
        with transaction.atomic():
            for link_id, count in live.items():
                row, created = DownloadCount.objects.select_for_update().get_or_create(
                    link_id=link_id, defaults={"downloads": count, "expires": expiry[link_id]})
                if created or row.downloads < count:
                    row.downloads = count
                    row.save(update_fields=["downloads"])
                    raised += 1
        self.stdout.write(f"{path}: {len(live)} live link(s) with downloads, {raised} count(s) set or raised"
                          + (f"; {skipped} line(s) that are not journal lines skipped" if skipped else ""))
