"""Create a demo user with an API token and a few sample images (idempotent)."""

from __future__ import annotations

import io
import json
from typing import Any

from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand, CommandParser
from PIL import Image as PillowImage
from rest_framework.authtoken.models import Token

from app.downloads.models import Image
from app.downloads.serializers import ImageSerializer

SAMPLES = [
    ("Sunset", "sunset at the beach.png", (255, 140, 0)),
    ("Forest", "森林 forest.jpg", (34, 139, 34)),
    ("Quotes", 'report "final"; v2.png', (70, 130, 180)),
]


def sample_image(name: str, color: tuple[int, int, int]) -> SimpleUploadedFile:
    picture = PillowImage.new("RGB", (320, 200), color)
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG" if name.endswith(".jpg") else "PNG")
    return SimpleUploadedFile(name, buffer.getvalue())


class Command(BaseCommand):
    help = "Create (or reuse) a demo user with an API token and sample images; print them as JSON with --json."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="demo")
        parser.add_argument("--password", default=None, help="set this password (default: unusable)")
        parser.add_argument("--no-images", action="store_true", help="create the user and token only")
        parser.add_argument("--staff", action="store_true", help="make the user staff and superuser (for /admin/)")
        parser.add_argument("--json", action="store_true", help="print token and image ids as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        user, created = get_user_model().objects.get_or_create(username=options["username"])
        if options["staff"]:
            user.is_staff = user.is_superuser = True
        if options["password"]:
            user.set_password(options["password"])
            user.save()
        elif created:
            user.set_unusable_password()
            user.save()
        elif options["staff"]:
            user.save()
        token, _ = Token.objects.get_or_create(user=user)
        images = list(Image.objects.filter(owner=user).order_by("id"))
        if not options["no_images"] and not images:
            for title, name, color in SAMPLES:
                serializer = ImageSerializer(data={"title": title, "file": sample_image(name, color)})
                serializer.is_valid(raise_exception=True)
                images.append(serializer.save(owner=user))
        summary = {"username": user.get_username(), "token": token.key,
                   "images": [{"id": image.pk, "name": image.original_name} for image in images]}
        if options["json"]:
            self.stdout.write(json.dumps(summary))
        else:
            self.stdout.write(f"user {summary['username']} (token {token.key}), {len(images)} image(s)")
