"""``manage.py revoke_links ID [ID ...]``: every link issued for these images stops working now."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from app.downloads.models import Image


class Command(BaseCommand):
    help = (
        "Revoke every outstanding link (signed nginx links and share links) to the given images, "
        "without a key rotation or an nginx reload. New links work at once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("image_ids", nargs="+", type=int, metavar="ID", help="image id (as in /api/images/<id>/)")

    def handle(self, *args: Any, **options: Any) -> None:
        ids: list[int] = options["image_ids"]
        images = {image.pk: image for image in Image.objects.filter(pk__in=ids)}
        missing = [str(image_id) for image_id in ids if image_id not in images]
        if missing:
            raise CommandError(f"no image with id {', '.join(missing)}; nothing was revoked")
        for image_id in ids:
            images[image_id].revoke_links()
            self.stdout.write(f"image {image_id}: every earlier link revoked (signed links: 404, share links: 403)")
