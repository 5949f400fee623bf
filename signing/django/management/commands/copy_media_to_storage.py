"""``manage.py copy_media_to_storage``: copy the files of a folder into the default storage, names kept.

Moving a disk deployment to a bucket: with ``STORAGES["default"]`` set to the bucket, this
uploads every file under ``MEDIA_ROOT`` (or ``--from``) that the storage lacks, under the same
name, so every link, every ``FileField`` and every share link stays valid. It can run again (it
skips what is there) and it never deletes: remove the old folder yourself once the origin
serves from the bucket (docs/deployment.md#moving-a-disk-deployment-to-a-bucket).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError, CommandParser

PROGRESS_EVERY = 100  # files between two progress lines


class Command(BaseCommand):
    help = ("Copy every file of MEDIA_ROOT (or --from) that the default storage lacks into it, under the same name "
            "(moving files from disk into a bucket). Never deletes; can run again.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from", dest="source", type=Path, help="the folder to copy (default MEDIA_ROOT)")
        parser.add_argument("--dry-run", action="store_true", help="say what would be copied, copy nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        source: Path | None = options["source"] or (Path(settings.MEDIA_ROOT) if settings.MEDIA_ROOT else None)
        if source is None or not source.is_dir():
            raise CommandError(f"{source or 'MEDIA_ROOT'} is not a folder: pass --from FOLDER, the files' old home")
        if getattr(default_storage, "location", None) and Path(default_storage.location).resolve() == source.resolve():
            raise CommandError(f"the default storage is {source} itself: set STORAGES['default'] to the bucket first")
        started = time.monotonic()
        files = sorted(path for path in source.rglob("*") if path.is_file() and not path.is_symlink())
        copied = skipped = size = 0
        for index, path in enumerate(files, 1):
            name = path.relative_to(source).as_posix()
            if default_storage.exists(name):
                skipped += 1
            else:
                if not options["dry_run"]:
                    with path.open("rb") as stream:
                        stored = default_storage.save(name, File(stream, name=name))
                    if stored != name:
                        raise CommandError(f"the storage stored {name!r} as {stored!r}: links to it would break; "
                                           "nothing after it was copied")
                copied += 1
                size += path.stat().st_size
            if index % PROGRESS_EVERY == 0:
                self.stdout.write(f"  {index}/{len(files)} files looked at, {copied} copied")
        verb = "would copy" if options["dry_run"] else "copied"
        self.stdout.write(f"{source}: {verb} {copied} file(s) ({size / 1e6:,.1f} MB), skipped {skipped} already in "
                          f"the storage, in {time.monotonic() - started:.1f} s")
