"""The download counts of download-limited links, kept in the app's database for every origin.

Each origin nginx asks the app (``POST /_secure_link/downloads/take``, then ``…/settle`` for
a request that did not send the whole file; nginx/secure_link/lua/downloads.lua) and the app
answers from one atomic upsert, so a count is exact across any number of origins and app
servers, survives the restart of any of them, and is the count the API shows. On PostgreSQL
an ``INSERT … ON CONFLICT DO UPDATE … WHERE downloads < limit RETURNING`` takes the row's lock;
on SQLite the same statement holds the database's write lock.

The rule for Range requests and resumed downloads (docs/per-link.md):

- every GET counts one download, whatever its ``Range`` (``bytes=0-`` and many small ranges
  count one each), unless it is a *resume*;
- a request that counted and was cut short after sending part of the file leaves a resume
  credit at ``start + sent - min(sent, RESUME_MARGIN)``: the next request whose single
  ``Range`` starts there or later (a plain GET starts at 0) takes the credit instead of a
  download. A resume that is cut again leaves a new credit only if it sent more than the
  margin (its point then moves on by what it really sent), so one download gives one file,
  plus repeats of at most the margin (a file under the margin: one free retry after a cut);
- a request that sent no file bytes (404, 304, 416, 5xx) gives back what it took;
- a request is taken once by its request id: an edge that retries a request at another origin
  (the first one died or stalled) sends the id it gave it, and the counter answers the retry as
  it answered the first attempt, without taking a second download; the first attempt's
  give-back then leaves the download to the retry.

A HEAD takes nothing: it is refused (410) when the link is used up and holds no credit.
"""

from __future__ import annotations

import enum
import re
import time
from typing import Any
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection, models

from ..nginx.signed_string import check_link_fields
from .models import DownloadCount, DownloadTake, IssuedLink

REQUEST_ID = re.compile(r"[0-9a-f]{32}")

# Bytes nginx handed to the kernel but the client may never have received: up to Linux's
# default largest send buffer (tcp_wmem, 4 MiB) plus its receive buffer (tcp_rmem, 6 MiB).
RESUME_MARGIN = 10 << 20


class Taken(enum.Enum):
    """What ``take`` did: counted a download, took a resume credit, or refused."""

    COUNTED = "counted"
    RESUMED = "resumed"
    OPEN = "open"  # a HEAD of a link that is not used up: nothing taken
    USED_UP = "used_up"
    REVOKED = "revoked"


class Outcome(enum.Enum):
    """How a request that took something ended, as the origin saw it in its log phase."""

    NOTHING_SENT = "none"  # no file bytes: what it took is given back
    CUT = "cut"  # part of the file: a resume credit


@dataclass(frozen=True)
class LimitedRequest:
    """One request of a download-limited link, as the origin forwards it (already verified by nginx)."""

    link_id: str
    limit: int
    expires: int
    start: int | None  # where its single Range starts (0 without a Range); None: never a resume
    head: bool = False
    request_id: str = ""  # the first nginx's $request_id (32 hex digits); "" for none

    def __post_init__(self) -> None:
        _check_ids(self.link_id, self.request_id, limit=self.limit)
        if self.start is not None and self.start < 0:
            raise ValueError("start must not be negative")


def _check_ids(link_id: str, request_id: str, limit: int | None = None) -> None:
    """ValueError unless ``link_id`` (and ``limit``) are what a signer emits and ``request_id`` is
    empty or an nginx $request_id."""
    check_link_fields(link_id, None, limit)
    if request_id and not REQUEST_ID.fullmatch(request_id):
        raise ValueError(f"{request_id!r} is not a request id")


def _table(model: type[models.Model] = DownloadCount) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def take(request: LimitedRequest) -> Taken:
    """Count one download of the link, take its resume credit, or refuse.

    Two statements for a download, no ORM on the way (every limited download pays for them):
    one reads the link's revocation and whether a resume credit could apply, one counts (or
    takes the credit). A request id (an edge's request, which it may retry at another origin)
    adds one statement that answers a retry as its first attempt was answered, and one that
    keeps the answer. Raises django.db.DatabaseError when the database cannot answer (the
    origin answers 503).
    """
    counts, takes, links = (_table(model) for model in (DownloadCount, DownloadTake, IssuedLink))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT (SELECT 1 FROM {links} WHERE id = %s AND revoked_at IS NOT NULL), "
                       f"(SELECT 1 FROM {counts} WHERE link_id = %s AND resume_open AND resume_point <= %s)",
                       [request.link_id, request.link_id, -1 if request.start is None else request.start])
        revoked, credit = cursor.fetchone()
        if revoked:
            return Taken.REVOKED
        retried = bool(request.request_id) and not request.head
        if retried:  # one statement: a give-back of the first attempt either comes first or sees this mark
            cursor.execute(f"UPDATE {takes} SET reused = %s WHERE link_id = %s AND request_id = %s RETURNING took",
                           [True, request.link_id, request.request_id])
            earlier = cursor.fetchone()
            if earlier is not None:
                return Taken(earlier[0])  # a retry of a request that took already: the same answer, nothing more
        taken = _take(cursor, counts, request, credit=bool(credit))
        if retried and taken in (Taken.COUNTED, Taken.RESUMED):
            cursor.execute(f"INSERT INTO {takes} (link_id, request_id, took, expires, reused) "
                           "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (link_id, request_id) DO NOTHING",
                           [request.link_id, request.request_id, taken.value, request.expires, False])
        return taken


def _take(cursor: Any, table: str, request: LimitedRequest, *, credit: bool) -> Taken:
    if request.head:
        cursor.execute(f"SELECT downloads, resume_open FROM {table} WHERE link_id = %s", [request.link_id])
        row = cursor.fetchone()
        used_up = row is not None and row[0] >= request.limit and not row[1]
        return Taken.USED_UP if used_up else Taken.OPEN
    if credit and request.start is not None:  # the update decides: a racing resume may have taken it
        cursor.execute(f"UPDATE {table} SET resume_open = %s WHERE link_id = %s AND resume_open "
                       "AND resume_point <= %s", [False, request.link_id, request.start])
        if cursor.rowcount == 1:
            return Taken.RESUMED
    cursor.execute(
        f"INSERT INTO {table} (link_id, downloads, expires, resume_open) VALUES (%s, 1, %s, %s) "
        f"ON CONFLICT (link_id) DO UPDATE SET downloads = {table}.downloads + 1 "
        f"WHERE {table}.downloads < %s RETURNING downloads",
        [request.link_id, request.expires, False, request.limit])
    return Taken.COUNTED if cursor.fetchone() is not None else Taken.USED_UP


def settle(link_id: str, took: Taken, outcome: Outcome, *, start: int = 0, sent: int = 0,
           request_id: str = "") -> None:
    """End a request that took ``took`` and did not send the whole file (see the module's rule).

    ``request_id``: the edge's id the take was recorded under. A request that sent nothing gives
    its download back, unless a retry of it (at another origin) was answered with that download
    meanwhile: the retry owns it then, and gives it back itself if it too sends nothing.
    """
    _check_ids(link_id, request_id)
    table, takes = _table(), _table(DownloadTake)
    with connection.cursor() as cursor:
        if outcome is Outcome.NOTHING_SENT and request_id:
            cursor.execute(f"DELETE FROM {takes} WHERE link_id = %s AND request_id = %s AND NOT reused",
                           [link_id, request_id])
            if cursor.rowcount == 0:
                cursor.execute(f"UPDATE {takes} SET reused = %s WHERE link_id = %s AND request_id = %s AND reused",
                               [False, link_id, request_id])
                if cursor.rowcount == 1:
                    return  # handed over to the retry that was answered with this download
        if outcome is Outcome.NOTHING_SENT and took is Taken.COUNTED:
            cursor.execute(f"UPDATE {table} SET downloads = downloads - 1 WHERE link_id = %s AND downloads > 0",
                           [link_id])
        elif outcome is Outcome.NOTHING_SENT and took is Taken.RESUMED:
            cursor.execute(f"UPDATE {table} SET resume_open = %s WHERE link_id = %s", [True, link_id])
        elif outcome is Outcome.CUT and (took is Taken.COUNTED or sent > RESUME_MARGIN):
            # A resume earns a new credit only by sending more than the margin: its point then moves
            # on by what it really sent, so asking again from a later byte cannot repeat a file.
            point = start + sent - min(sent, RESUME_MARGIN)
            progress = "" if took is Taken.COUNTED else " AND (resume_point IS NULL OR resume_point < %s)"
            cursor.execute(f"UPDATE {table} SET resume_point = %s, resume_open = %s WHERE link_id = %s{progress}",
                           [point, True, link_id, *([point] if progress else [])])


def downloads(link_id: str) -> int:
    """Downloads taken of the link so far (0 for one never asked for)."""
    return DownloadCount.objects.filter(pk=link_id).values_list("downloads", flat=True).first() or 0


def download_counts(link_ids: Iterable[str]) -> dict[str, int]:
    """The downloads of each of ``link_ids`` that has been asked for, in one query."""
    return dict(DownloadCount.objects.filter(pk__in=list(link_ids)).values_list("link_id", "downloads"))


def prune(*, now: float | None = None) -> int:
    """Drop the counts of links that have expired (nginx refuses them anyway); returns how many."""
    moment = int(time.time() if now is None else now)
    DownloadTake.objects.filter(expires__lt=moment).delete()
    deleted, _ = DownloadCount.objects.filter(expires__lt=moment).delete()
    return deleted
