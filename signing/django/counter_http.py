"""The download counter over HTTP, as the origins ask it: one answer, two ways in.

:func:`answer` turns an origin's request (``POST /_secure_link/downloads/take`` or ``…/settle``,
``signing.fleet.protocol``) into a status and a line of text. Django's URLconf routes the two
paths to :func:`signing.django.views.take_download` and ``settle_download``, which answer with it;
:func:`counter_fast_path` wraps a project's WSGI application so that the same two paths are
answered before Django's middleware runs (sessions, authentication, CSRF, messages: none of
which an origin's request needs), a fraction of the CPU per limited download (``make bench``).
Everything else goes to the wrapped application untouched.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

from django.db import DatabaseError, close_old_connections

from ..fleet.protocol import SETTLE_PATH, TAKE_PATH
from ..nginx.counter import counter_token
from . import counting

Answer = tuple[int, str]
WSGIApplication = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

NOT_LIMITED = (400, "not a download-limited link's request")
NO_DATABASE = (503, "the download counter cannot reach its database")


def bearer_matches(authorization: str, token: str) -> bool:
    """``Authorization: Bearer TOKEN`` names ``token`` (compared in constant time)."""
    scheme, _, given = authorization.partition(" ")
    return scheme == "Bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def answer(path: str, query: Mapping[str, str], authorization: str, fleet_token: str | None) -> Answer:
    """The counter's answer to an origin asking ``path`` (:data:`TAKE_PATH` or :data:`SETTLE_PATH`):
    404 without a fleet token, 403 without the counter token, else what :func:`take` or
    :func:`settle` say."""
    if fleet_token is None:
        return 404, "no fleet token is configured"
    if not bearer_matches(authorization, _counter_token(fleet_token)):
        return 403, "the counter token is required"
    return (take if path == TAKE_PATH else settle)(query)


@functools.lru_cache(maxsize=4)
def _counter_token(fleet_token: str) -> str:
    return counter_token(fleet_token)  # an HMAC: once per token, not once per limited download


def take(query: Mapping[str, str]) -> Answer:
    """``id``, ``limit``, ``expires``, optional ``start``, ``head=1`` and ``request``: 200 ``counted``,
    ``resumed`` or ``open``; 410 used up; 403 revoked; 400; 503 when the database cannot answer."""
    try:
        start = query.get("start")
        limited = counting.LimitedRequest(query["id"], int(query["limit"]), int(query["expires"]),
                                          int(start) if start is not None else None, head=query.get("head") == "1",
                                          request_id=query.get("request", ""))
    except (KeyError, ValueError):
        return NOT_LIMITED
    try:
        taken = counting.take(limited)
    except DatabaseError:
        return NO_DATABASE
    return {counting.Taken.USED_UP: 410, counting.Taken.REVOKED: 403}.get(taken, 200), taken.value


def settle(query: Mapping[str, str]) -> Answer:
    """``id``, ``took`` (counted, resumed), ``outcome`` (none, cut), ``start``, ``sent``, ``request``:
    204; 400; 503."""
    try:
        took, outcome = counting.Taken(query["took"]), counting.Outcome(query["outcome"])
        if took not in (counting.Taken.COUNTED, counting.Taken.RESUMED):
            raise ValueError(took)
        counting.settle(query["id"], took, outcome, start=int(query.get("start", 0)), sent=int(query.get("sent", 0)),
                        request_id=query.get("request", ""))
    except (KeyError, ValueError):
        return NOT_LIMITED
    except DatabaseError:
        return NO_DATABASE
    return 204, ""


def counter_fast_path(application: WSGIApplication, *, fleet_token: Callable[[], str | None] | None = None
                      ) -> WSGIApplication:
    """``application`` with the counter's two paths answered before Django's middleware.

    In a project's wsgi.py: ``application = counter_fast_path(get_wsgi_application())``. The
    database connection is handled as Django handles it around a request (``CONN_MAX_AGE``,
    health checks). ``fleet_token`` reads the token (default: the setting's file).
    """
    if fleet_token is None:
        from .views import fleet_token as configured

        fleet_token = configured

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path not in (TAKE_PATH, SETTLE_PATH):
            return application(environ, start_response)
        if environ.get("REQUEST_METHOD") != "POST":
            status, text = 405, "POST only"
        else:
            query = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
            close_old_connections()
            try:
                status, text = answer(path, query, environ.get("HTTP_AUTHORIZATION", ""), fleet_token())
            finally:
                close_old_connections()
        body = f"{text}\n".encode() if status != 204 else b""
        start_response(f"{status} {HTTPStatus(status).phrase}", [
            ("Content-Type", "text/plain"), ("Cache-Control", "no-store"), ("Content-Length", str(len(body)))])
        return [body]

    return wsgi
