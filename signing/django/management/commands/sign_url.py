"""``manage.py sign_url PATH``: print an absolute signed URL for a stored file (or folder)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote, urlsplit

from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError, CommandParser

from signing import LinkError, SignedLink
from signing.django.conf import link_settings
from signing.django.links import issue_directory, issue_folder_cookie, media_folder, media_path, sign_file
from signing.nginx.directory import directory_prefix_bytes
from signing.nginx.folder_cookie import cookie_folder_bytes
from signing.paths import check_signable_path

def storage_name(path: str, media_url: str) -> str | None:
    """``images/a.jpg``, ``/media/images/a.jpg`` or a full URL to ``images/a.jpg``; None if elsewhere."""
    url_path = urlsplit(path).path if "://" in path else path
    if url_path.startswith(media_url):
        return unquote(url_path[len(media_url):])
    return None if url_path.startswith("/") or "://" in path else path


class Command(BaseCommand):
    help = "Print an absolute signed URL for a file of the default storage (MEDIA_ROOT or its bucket; exit 1 on error)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="the file's name in the storage (images/cat.jpg) or its /media/... URL path")
        parser.add_argument("--ttl", type=int, help="lifetime in seconds (default: SECURE_LINK_DEFAULT_TTL)")
        parser.add_argument("--bind-ip", metavar="ADDR[/LENGTH]",
                            help="only this client address may use the link; ADDR/LENGTH: every address of its network "
                                 "of LENGTH bits (IPv4 8 to 32, IPv6 32 to 128)")
        parser.add_argument("--filename", help="download name sent as Content-Disposition")
        parser.add_argument("--inline", action="store_true", help="Content-Disposition: inline instead of attachment")
        parser.add_argument("--base-url", help="scheme and host (default: SECURE_LINK['ORIGIN_URL'], else BASE_URL)")
        parser.add_argument("--allow-missing", action="store_true", help="sign even if the file does not exist")
        parser.add_argument("--max-downloads", type=int, metavar="N",
                            help="the link may be downloaded N times (counted by the origin nginx)")
        parser.add_argument("--not-before", metavar="WHEN",
                            help="refused (403) until then: ISO 8601 UTC (2026-12-24T18:00:00Z) or Unix seconds")
        parser.add_argument("--json", action="store_true", help="print {url, id, expires_at, kid} as JSON")
        parser.add_argument("--directory", action="store_true",
                            help="sign a folder (videos/42/): one token for every file below it, e.g. an HLS stream; "
                                 "recorded by its id, which revoke_link and the API take")
        parser.add_argument("--cookie", action="store_true",
                            help="with --directory: print the folder's cookies (Name=Value lines; with --json "
                                 "{id, cookies, path, expires_at, not_before}) instead of a link, for players that "
                                 "follow absolute URLs; recorded by its id like a directory link")

    def handle(self, *args: Any, **options: Any) -> None:
        config = link_settings()
        name = storage_name(options["path"], config.media_url)
        if name is None:
            raise CommandError(f"{options['path']!r} is neither relative to MEDIA_ROOT nor under {config.media_url}")
        if options["ttl"] is not None and not 0 < options["ttl"] <= config.max_ttl:
            raise CommandError(f"--ttl must be between 1 and SECURE_LINK_MAX_TTL={config.max_ttl} seconds")
        if options["cookie"] and not options["directory"]:
            raise CommandError("--cookie grants a folder: pass --directory too")
        try:  # a path that can never be signed is refused before anything else
            if options["cookie"]:
                cookie_folder_bytes(media_folder(name), config.media_url)
            elif options["directory"]:
                directory_prefix_bytes(media_folder(name), config.media_url)
            else:
                check_signable_path(media_path(name), prefix=config.media_url)
        except LinkError as error:
            raise CommandError(str(error)) from None
        if not options["allow_missing"] and not default_storage.exists(name):
            kind = "folder" if options["directory"] else "file"
            raise CommandError(f"no {kind} {name!r} in the default storage (pass --allow-missing to sign anyway)")
        if options["cookie"]:
            self.print_cookies(name, options)
            return
        try:
            link = self.sign(name, options)
        except (LinkError, ValueError) as error:
            raise CommandError(str(error)) from None
        base_url = (options["base_url"] or config.origin_url).rstrip("/")
        if not base_url and "://" not in link.url:
            raise CommandError("the link needs a scheme and host: pass --base-url https://files.example.com, or set "
                               "SECURE_LINK['ORIGIN_URL'] (SECURE_LINK_ORIGIN_URL) or BASE_URL (SITE_BASE_URL)")
        url = link.url if "://" in link.url else base_url + link.url
        expires_at = link.expires_iso
        if options["json"]:
            self.stdout.write(json.dumps({"url": url, "id": link.link_id, "expires_at": expires_at, "kid": link.kid,
                                          "not_before": link.not_before_iso, "max_downloads": link.max_downloads}))
        else:
            self.stdout.write(url)

    def print_cookies(self, name: str, options: dict[str, Any]) -> None:
        if options["filename"] or options["inline"] or options["max_downloads"]:
            raise CommandError("--filename, --inline and --max-downloads apply to files, not to --cookie")
        try:
            grant, _ = issue_folder_cookie(name, owner=None, ttl=options["ttl"], client_ip=options["bind_ip"],
                                           not_before=parse_moment_at(options["not_before"]))
        except (LinkError, ValueError) as error:
            raise CommandError(str(error)) from None
        if options["json"]:
            self.stdout.write(json.dumps(grant.as_json()))
        else:
            self.stdout.write("\n".join(f"{cookie}={value}" for cookie, value in grant.cookies.items()))

    def sign(self, name: str, options: dict[str, Any]) -> SignedLink:
        if options["directory"]:
            if options["filename"] or options["inline"] or options["max_downloads"]:
                raise CommandError("--filename, --inline and --max-downloads apply to files, not to --directory links")
            link, _ = issue_directory(name, owner=None, ttl=options["ttl"], client_ip=options["bind_ip"],
                                      not_before=parse_moment_at(options["not_before"]))
            return link
        return sign_file(
            name,
            ttl=options["ttl"],
            filename=options["filename"],
            disposition="inline" if options["inline"] else None,
            client_ip=options["bind_ip"],
            not_before=parse_moment(options["not_before"]),
            max_downloads=options["max_downloads"],
        )


def parse_moment_at(text: str | None) -> datetime | None:
    """``--not-before`` as an aware datetime (None when not given)."""
    moment = parse_moment(text)
    return None if moment is None else datetime.fromtimestamp(moment, tz=timezone.utc)


def parse_moment(text: str | None) -> int | None:
    """``--not-before``: Unix seconds, or ISO 8601 (UTC unless it names an offset)."""
    if text is None:
        return None
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CommandError(f"--not-before {text!r} is neither Unix seconds nor ISO 8601 (2026-12-24T18:00:00Z)") from None
    return int((moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp())
