"""Responses that hand the bytes to nginx, or stream them from Django when there is no nginx."""

from __future__ import annotations

from pathlib import Path

from django.http import FileResponse, Http404, HttpResponse

from signing import content_disposition
from signing.disposition import quote_filename


class XAccelRedirectResponse(HttpResponse):
    """An empty response whose ``X-Accel-Redirect`` makes nginx send an internal file.

    ``target`` must already be percent-encoded (nginx decodes it once). Content-Type,
    Content-Disposition and Cache-Control set here survive the redirect.
    """

    def __init__(self, target: str, *, content_type: str, disposition: str | None = None, **kwargs: object) -> None:
        super().__init__(content_type=content_type, **kwargs)  # type: ignore[arg-type]
        self["X-Accel-Redirect"] = target
        if disposition:
            self["Content-Disposition"] = disposition
        self["Cache-Control"] = "private"


def download_disposition(original_name: str, kind: str = "attachment") -> str | None:
    """The RFC 6266 header for a download name: identical to what nginx sends for signed links."""
    return content_disposition(kind, quote_filename(original_name) if original_name else "")


def stream_file(root: Path, relative: str, *, content_type: str | None = None, disposition: str | None = None) -> FileResponse:
    """Stream ``root/relative`` with Django; 404 unless it is a regular file inside ``root``."""
    root = root.resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise Http404("no such file")
    response = FileResponse(path.open("rb"), content_type=content_type)
    if disposition:
        response["Content-Disposition"] = disposition
    else:  # as nginx: no signed disposition, no header (FileResponse adds one by itself)
        del response["Content-Disposition"]
    response["Cache-Control"] = "private"
    return response
