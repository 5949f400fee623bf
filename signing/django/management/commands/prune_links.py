"""``manage.py prune_links``: drop the download counts of links that have expired anyway."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from signing.django import counting
from signing.django.models import DownloadCount


class Command(BaseCommand):
    help = ("Remove the download counts of links that have expired (nginx refuses them anyway); run it daily. "
            "Each verifier's sync agent drops expired revocations from its own folder.")

    def handle(self, *args: Any, **options: Any) -> None:
        removed = counting.prune()
        left = DownloadCount.objects.count()
        self.stdout.write(f"removed the download counts of {removed} expired link(s); {left} still kept")
