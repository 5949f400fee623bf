"""``manage.py install_nginx``: put the nginx folder where nginx reads its config, from the settings.

Writes the shipped ``secure_link/`` folder, the role files, the keys includes (the settings'
keys, 0600) and the Lua path into nginx's config folder (default ``/etc/nginx``), then prints
the lines to add to the operator's own ``http`` and ``server`` blocks, with this project's
``MEDIA_ROOT`` filled in. ``--counter`` names the app servers an origin asks to count the
downloads of download-limited links (:mod:`signing.nginx.install`). When the default
storage is a bucket (:class:`signing.django.s3.SignedS3Storage`) it also writes
``secure_link_bucket.conf``, with the origin's own read-only credentials
(``--origin-credentials``: never the app's, which can write).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError, CommandParser

from signing import KeySetError
from signing.buckets import Credentials
from signing.django.conf import current_key_set
from signing.django.views import fleet_token
from signing.nginx.counter import DownloadCounter
from signing.nginx.install import (
    ROLE_FILES,
    OriginBucket,
    add_counter_arguments,
    add_origin_bucket_arguments,
    install,
    install_report,
    origin_bucket,
)


class Command(BaseCommand):
    help = ("Write the nginx folder this package ships, the keys includes and the Lua path into nginx's config "
            "folder, and print the lines to add to your own http and server blocks.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--config-folder", type=Path, default=Path("/etc/nginx"),
                            help="the folder of nginx's main config (default /etc/nginx)")
        parser.add_argument("--role", choices=list(ROLE_FILES), default="origin",
                            help="origin (nginx in front of this app, the default) or edge: which lines to print")
        parser.add_argument("--origin-credentials", type=Path, metavar="FILE",
                            help="files in a bucket: the origin's read-only credentials (ACCESS_KEY_ID=, "
                                 "SECRET_ACCESS_KEY=; mode 0600)")
        parser.add_argument("--state-root", type=Path,
                            help="the folder of the origin's sync agent (--state-dir) for the printed lines")
        add_counter_arguments(parser)
        add_origin_bucket_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        key_set = current_key_set()
        folder: Path = options["config_folder"]
        try:
            bucket = self.origin_bucket(options)
            counter = self.counter(options)
            install(folder, key_set.check(), bucket=bucket, counter=counter)
        except (KeySetError, ValueError) as error:
            raise CommandError(str(error)) from None
        except OSError as error:
            raise CommandError(f"cannot write into {folder}: {error.strerror or error}") from None
        media_root = Path(settings.MEDIA_ROOT) if settings.MEDIA_ROOT else None
        self.stdout.write(install_report(folder, key_set, role=options["role"], media_root=media_root,
                                         state_root=options["state_root"], bucket=bucket, counter=counter),
                          ending="")

    def counter(self, options: dict[str, Any]) -> DownloadCounter | None:
        """The app servers that count limited downloads, with the counter token from the fleet token."""
        if not options["counter"]:
            return None
        token = fleet_token()
        if token is None:
            raise CommandError("--counter needs the fleet token: set SECURE_LINK_FLEET_TOKEN_FILE (docs/fleet.md)")
        return DownloadCounter.of(options["counter"], token)

    def origin_bucket(self, options: dict[str, Any]) -> OriginBucket | None:
        """The bucket the origin fetches from: the default storage's, read with the origin's own credentials."""
        bucket = getattr(default_storage, "bucket_address", None)
        if bucket is None or options["role"] != "origin":
            return None
        if options["origin_credentials"] is None:
            raise CommandError(f"the files are in the bucket {bucket.name} at {bucket.endpoint}: pass "
                               "--origin-credentials FILE, the origin's read-only access key (never the app's)")
        credentials = Credentials.from_file(options["origin_credentials"])
        return origin_bucket(bucket, credentials, options)
