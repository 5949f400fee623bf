"""Responses that hand the bytes to nginx, or stream them from Django when there is no nginx."""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Iterator
from pathlib import Path

from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.utils.http import http_date, parse_http_date_safe

from ..nginx.disposition import content_disposition, filename_field


class XAccelRedirectResponse(HttpResponse):
    """An empty response whose ``X-Accel-Redirect`` makes nginx send an internal file.

    ``target`` must already be percent-encoded (nginx decodes it once). Content-Type,
    Content-Disposition and Cache-Control set here survive the redirect.
    """

    def __init__(self, target: str, *, content_type: str, disposition: str | None = None, **kwargs: object) -> None:
        super().__init__(content_type=content_type, **kwargs)
        self["X-Accel-Redirect"] = target
        if disposition:
            self["Content-Disposition"] = disposition
        self["Cache-Control"] = "private"


def download_disposition(original_name: str, kind: str = "attachment") -> str | None:
    """The RFC 6266 header for a download name: identical to what nginx sends for signed links."""
    return content_disposition(kind, filename_field(original_name) if original_name else "")


def stream_file(
    root: Path,
    relative: str,
    *,
    request: HttpRequest | None = None,
    content_type: str | None = None,
    disposition: str | None = None,
) -> HttpResponseBase:
    """Send ``root/relative`` from Django as nginx's static module would; 404 unless a file inside ``root``.

    With the ``request``: nginx's ``ETag`` and ``Last-Modified``, 304 for a matching
    ``If-None-Match``/``If-Modified-Since``, 412 for a failed ``If-Match``/``If-Unmodified-Since``,
    and 206/416 for a single byte range (several ranges get the whole file).
    """
    root = root.resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise Http404("no such file")
    status = path.stat()
    size, mtime = status.st_size, int(status.st_mtime)
    etag = f'"{mtime:x}-{size:x}"'  # nginx's format: hex mtime, hex size
    condition = precondition_status(request, etag=etag, mtime=mtime) if request is not None else None
    byte_range = requested_range(request, size, etag=etag, mtime=mtime) if request is not None and condition is None else None
    response: HttpResponseBase
    if condition is not None:  # streaming, so that no middleware adds a Content-Length: nginx sends none
        response = StreamingHttpResponse(iter(()), status=condition)
        del response["Content-Type"]
    elif byte_range == "unsatisfiable":
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
    elif isinstance(byte_range, tuple):
        start, end = byte_range
        response = StreamingHttpResponse(_read_range(path, start, end), status=206,
                                         content_type=content_type or _guess_type(path))
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
        response["Content-Length"] = str(end - start + 1)
    else:
        response = FileResponse(path.open("rb"), content_type=content_type)
        del response["Content-Disposition"]  # FileResponse adds one by itself; nginx only sends the signed one
    if disposition and response.status_code in (200, 206, 304):  # as nginx's add_header
        response["Content-Disposition"] = disposition
    response["ETag"] = etag
    response["Last-Modified"] = http_date(mtime)
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = "private"
    return response


def precondition_status(request: HttpRequest, *, etag: str, mtime: int) -> int | None:
    """304 or 412 as nginx's not_modified filter decides, or None to send the file."""
    headers = request.headers
    if "If-Unmodified-Since" in headers and (parse_http_date_safe(headers["If-Unmodified-Since"]) or -1) < mtime:
        return 412
    if "If-Match" in headers and not _etag_matches(headers["If-Match"], etag, weak=False):
        return 412
    if "If-Modified-Since" not in headers and "If-None-Match" not in headers:
        return None
    if "If-Modified-Since" in headers and parse_http_date_safe(headers["If-Modified-Since"]) != mtime:
        return None  # nginx's default `if_modified_since exact`
    if "If-None-Match" in headers and not _etag_matches(headers["If-None-Match"], etag, weak=True):
        return None
    return 304


def requested_range(request: HttpRequest, size: int, *, etag: str, mtime: int) -> tuple[int, int] | str | None:
    """``(first, last)`` of a single satisfiable ``Range``, ``"unsatisfiable"``, or None for the whole file."""
    header = request.headers.get("Range", "")
    if request.method not in ("GET", "HEAD") or not header.lower().startswith("bytes="):
        return None
    if_range = request.headers.get("If-Range")
    if if_range is not None and if_range != etag and parse_http_date_safe(if_range) != mtime:
        return None
    match = _SINGLE_RANGE.fullmatch(header[len("bytes="):].strip())
    if match is None:
        return None  # several ranges or bad syntax: the whole file
    first, last = match.groups()
    if first == "":
        length = int(last)
        if length == 0:
            return "unsatisfiable"
        return max(size - length, 0), size - 1
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if start >= size or start > end:
        return "unsatisfiable"
    return start, end


_SINGLE_RANGE = re.compile(r"(\d*)\s*-\s*(\d*)")


def _etag_matches(header: str, etag: str, *, weak: bool) -> bool:
    if header.strip() == "*":
        return True
    for candidate in header.split(","):
        candidate = candidate.strip()
        if weak and candidate.startswith("W/"):
            candidate = candidate[2:]
        if candidate == etag:
            return True
    return False


def _guess_type(path: Path) -> str:
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def _read_range(path: Path, start: int, end: int, chunk_size: int = 64 * 1024) -> Iterator[bytes]:
    with path.open("rb") as stream:
        stream.seek(start)
        remaining = end - start + 1
        while remaining > 0:
            chunk = stream.read(min(chunk_size, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk
