"""The app's HTTP endpoints: the per-link API, the fleet's key and revocation lists, and ``/media/``
checked in Python when no nginx is in front (:mod:`signing.django.urls` routes the last two)."""

from __future__ import annotations

from django.conf import settings
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from rest_framework import mixins, permissions, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from .. import DownloadsUsedUp, KeySet, KeySetError, LinkError, LinkRevoked
from . import counter_http, counting
from ..fleet.protocol import SETTLE_PATH, TAKE_PATH, TOKEN_HEADER
from ..nginx.signed_string import LINK_ID_PATTERN
from ..paths import nginx_uri, quote_path
from .conf import current_key_set, get_link_verifier, link_settings
from .download_log import downloads_of
from .exceptions import status_for
from .models import IssuedLink
from .openapi import OpenApiResponse, extend_schema, extend_schema_view
from .responses import stream_file
from .serializers import DownloadSerializer, IssuedLinkSerializer

NO_SUCH_LINK = OpenApiResponse(description="No such link, or not one of yours (never a hint which).")


NOT_AUTHENTICATED = OpenApiResponse(description="No credentials: send `Authorization: Token …` or log in.")


@extend_schema_view(
    retrieve=extend_schema(summary="Get one link",
                           description="The link's subject and path, expiry, start, download limit, downloads so far and status "
                                       "(`active`, `revoked`, `used_up`, `expired`, `not_yet_valid`).",
                           responses={200: IssuedLinkSerializer, 401: NOT_AUTHENTICATED, 404: NO_SUCH_LINK}),
)
class IssuedLinkViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Issued links by link id (``router.register("links", IssuedLinkViewSet, basename="link")``):
    their owner or staff only; anyone else gets 404. Subclass it to show more of each link."""

    serializer_class = IssuedLinkSerializer
    permission_classes = [permissions.IsAuthenticated]
    lookup_value_regex = LINK_ID_PATTERN.pattern

    def get_queryset(self) -> QuerySet[IssuedLink]:
        return IssuedLink.objects.visible_to(self.request.user)

    @extend_schema(summary="Revoke one link", request=None,
                   description="This link, and only it, is refused (403): at every origin and edge "
                               "within SECURE_LINK_FLEET_BOUND. No key rotation, no nginx reload.",
                   responses={200: IssuedLinkSerializer, 401: NOT_AUTHENTICATED, 404: NO_SUCH_LINK})
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str | None = None) -> Response:
        link = self.get_object()
        link.revoke()
        return Response(self.get_serializer(link).data)

    @extend_schema(summary="A link's download log",
                   description="Every request of the link the verifiers logged (SECURE_LINK_DOWNLOAD_LOGS), "
                               "oldest first: when, through which verifier, from where, the status and the bytes.",
                   responses={200: DownloadSerializer(many=True), 401: NOT_AUTHENTICATED, 404: NO_SUCH_LINK})
    @action(detail=True, methods=["get"])
    def downloads(self, request: Request, pk: str | None = None) -> Response:
        link = self.get_object()
        return Response(DownloadSerializer(downloads_of(link.pk), many=True).data)


def keys_for_verifiers(request: HttpRequest) -> HttpResponse:
    """``GET /_secure_link/keys``: the key set for the verifiers' sync agents, with the fleet token only.

    404 unless a fleet token is configured; 403 for a missing or wrong one (compared in
    constant time). The answer is the keys file's text without the active line: verifiers
    accept every key and sign nothing. Never cached, never logged with its body.
    """
    refused = _refuse_without_fleet_token(request)
    if refused is not None:
        return refused
    body = KeySet(_keys_now().nginx_keys().keys).render()  # a CDN's keys are none of a verifier's business
    response = HttpResponse(body, content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = "no-store"
    return response


def revocations_for_verifiers(request: HttpRequest) -> HttpResponse:
    """``GET /_secure_link/revocations``: the revoked link ids not yet expired, for the sync agents.

    JSON ``{"revoked": {"LINK_ID": EXPIRES, ...}}``, with the fleet token only (as the keys).
    """
    refused = _refuse_without_fleet_token(request)
    if refused is not None:
        return refused
    now = timezone.now().replace(microsecond=0)
    revoked = IssuedLink.objects.filter(revoked_at__isnull=False, expires_at__gte=now).values_list("id", "expires_at")
    body = {"revoked": {link_id: int(expires_at.timestamp()) for link_id, expires_at in revoked}}
    response = JsonResponse(body)
    response["Cache-Control"] = "no-store"
    return response


def _plain(status: int, text: str) -> HttpResponse:
    response = HttpResponse(text + "\n", status=status, content_type="text/plain")
    response["Cache-Control"] = "no-store"
    response["Content-Length"] = str(len(response.content))  # the origin's Lua reads no chunked answer
    return response


@csrf_exempt
@require_POST
def take_download(request: HttpRequest) -> HttpResponse:
    """``POST /_secure_link/downloads/take?id=&limit=&expires=[&start=][&head=1][&request=]``: an origin
    counts one download of a limited link it has verified (:func:`signing.django.counter_http.take`);
    ``request`` is the request's id, the same when an edge retries it at another origin. With the
    counter token only. :func:`signing.django.counter_http.counter_fast_path` answers the same
    before Django's middleware."""
    return _counter_answer(request, TAKE_PATH)


@csrf_exempt
@require_POST
def settle_download(request: HttpRequest) -> HttpResponse:
    """``POST /_secure_link/downloads/settle?id=&took=counted|resumed&outcome=none|cut[&start=&sent=]``:
    an origin ends a request that did not send the whole file (gives back, or leaves a resume
    credit). With the counter token only; 204, 400, or 503."""
    return _counter_answer(request, SETTLE_PATH)


def _counter_answer(request: HttpRequest, endpoint: str) -> HttpResponse:
    """The counter's answer through Django's URLconf, which may mount it under a prefix: by the
    endpoint the view stands for, not by the request's path."""
    status, text = counter_http.answer(endpoint, request.GET, request.headers.get(TOKEN_HEADER, ""), fleet_token())
    if status == 404:
        raise Http404(text)
    return HttpResponse(status=204) if status == 204 else _plain(status, text)


def _refuse_without_fleet_token(request: HttpRequest) -> HttpResponse | None:
    """404 unless a fleet token is configured, 403 without the right one (constant time), else None."""
    token = fleet_token()
    if token is None:
        raise Http404("no fleet token is configured")
    if not counter_http.bearer_matches(request.headers.get(TOKEN_HEADER, ""), token):
        return HttpResponse("a verifier's fleet token is required\n", status=403, content_type="text/plain")
    return None


def _keys_now() -> KeySet:
    """The keys file as it is this moment, so that no agent ever gets an older set after a newer one
    (app servers look at the file once a second); the last good set while the file is unusable."""
    path = link_settings().keys_file
    if path is not None and not link_settings().keys.keys:
        try:
            return KeySet.from_file(path).check()
        except (OSError, KeySetError):
            pass
    return current_key_set()


_read_tokens: dict[tuple[str, int, int, int], str | None] = {}  # (path, inode, size, mtime) -> the file's token


def fleet_token() -> str | None:
    """The fleet token from ``SECURE_LINK_FLEET_TOKEN_FILE``, or None when there is none.

    Asked on every counter and agent request: the file is read again only when its stat changes
    (a token replaced on disk counts from the next request), not on every request.
    """
    path = link_settings().fleet_token_file
    if path is None:
        return None
    try:
        status = path.stat()
        version = (str(path), status.st_ino, status.st_size, status.st_mtime_ns)
        token = _read_tokens.get(version, "")
        if token == "":  # not read in this version yet
            token = path.read_text(encoding="utf-8").strip() or None
            _read_tokens.clear()
            _read_tokens[version] = token
        return token
    except OSError:
        return None


def serve_signed_media(request: HttpRequest, path: str) -> HttpResponse | HttpResponseBase:
    """``/media/...`` without nginx: the Python verifier gives exactly nginx's answers.

    The path is checked in its raw form when the server passes it on (gunicorn's
    ``RAW_URI``, uWSGI's ``REQUEST_URI``), else as Django decoded it. With nginx in
    front this view is never reached; it answers 404 unless SERVE_WITH_DJANGO is on.
    """
    if not link_settings().serve_with_django:
        raise Http404("media is served by nginx")
    raw_uri = request.META.get("RAW_URI") or request.META.get("REQUEST_URI")
    raw_path = request_target_path(raw_uri).encode("latin-1") if raw_uri else quote_path(request.path).encode()
    media_url = link_settings().media_url
    try:
        if not nginx_uri(raw_path).startswith(media_url.encode()):
            raise Http404("not under the media prefix")  # nginx routes such a path elsewhere
        verified = get_link_verifier().verify(
            raw_path=raw_path,
            query=request.META.get("QUERY_STRING", "").encode("latin-1"),
            remote_addr=request.META.get("REMOTE_ADDR", ""),
        )
        took: counting.Taken | None = None  # what this request took of a limited link
        if verified.link_id is not None and verified.max_downloads is None and \
                IssuedLink.objects.filter(pk=verified.link_id, revoked_at__isnull=False).exists():
            raise LinkRevoked(f"link {verified.link_id} was revoked")
        if verified.max_downloads is not None and verified.link_id is not None:
            limited = counting.LimitedRequest(verified.link_id, verified.max_downloads, verified.expires,
                                              _range_start(request), head=request.method == "HEAD")
            taken = counting.take(limited)  # the origin's rule, from the same count
            if taken is counting.Taken.REVOKED:
                raise LinkRevoked(f"link {verified.link_id} was revoked")
            if taken is counting.Taken.USED_UP:
                raise DownloadsUsedUp(f"link {verified.link_id} has been used {verified.max_downloads} time(s)")
            took = taken if taken in (counting.Taken.COUNTED, counting.Taken.RESUMED) else None
    except LinkError as error:
        return HttpResponse(f"{status_for(error)}\n", status=status_for(error), content_type="text/plain")
    relative = verified.uri[len(media_url.encode()):].decode("utf-8", "surrogateescape")
    try:
        response = stream_file(settings.MEDIA_ROOT, relative, request=request, disposition=verified.content_disposition)
    except Http404:
        response = None
    if took is not None and verified.link_id is not None and (response is None or response.status_code not in (200, 206)):
        counting.settle(verified.link_id, took, counting.Outcome.NOTHING_SENT)  # 404, 304, 412, 416, as nginx does
    if response is None:
        raise Http404("no such file")
    return response


def _range_start(request: HttpRequest) -> int | None:
    """Where the request's single ``Range`` starts (0 without one); None for any other Range."""
    header = request.headers.get("Range")
    if header is None:
        return 0
    first, dash, _ = header.removeprefix("bytes=").partition("-")
    return int(first) if header.startswith("bytes=") and dash and first.isdigit() and "," not in header else None


def request_target_path(target: str) -> str:
    """The path of a request target, also in absolute form (``http://host/path?query``)."""
    path = target.partition("?")[0]
    scheme, separator, rest = path.partition("://")
    if separator and scheme.lower() in ("http", "https"):
        return "/" + rest.partition("/")[2]
    return path
