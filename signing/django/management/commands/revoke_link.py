"""``manage.py revoke_link LINK_ID [LINK_ID ...]``: these links, and only they, stop working."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from signing.django.conf import link_settings
from signing.django.models import IssuedLink


class Command(BaseCommand):
    help = (
        "Revoke single links by their link id (the API's `id`): 403 at every origin and edge within the fleet bound, a limited one at once "
        "within SECURE_LINK_FLEET_BOUND; the image's other links keep working. No key rotation, no reload."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("link_ids", nargs="+", metavar="LINK_ID", help="a link id, as in /api/links/<id>/")

    def handle(self, *args: Any, **options: Any) -> None:
        ids: list[str] = options["link_ids"]
        links = IssuedLink.objects.in_bulk(ids)
        missing = [link_id for link_id in ids if link_id not in links]
        if missing:
            raise CommandError(f"no link with id {', '.join(missing)}; nothing was revoked")
        bound = link_settings().fleet_bound
        for link_id in ids:
            newly = links[link_id].revoke()
            state = "revoked" if newly else "was already revoked"
            self.stdout.write(f"{links[link_id]}: {state}; "
                              f"403 at every origin and edge within {bound:g} s (their agents pull it)")
