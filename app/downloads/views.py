"""The image API, its links API, the image page and the /download/image/<id> compatibility view.

Links, folder cookies and X-Accel-Redirect come from :mod:`signing.django`, through its public
names, as in any project that installs it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotAuthenticated, ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from signing import LinkError
from signing.django.conf import get_link_signer, link_settings
from signing.django.counting import download_counts
from signing.django.exceptions import LinkInvalid, api_exception_for
from signing.django.links import (
    absolute_url,
    bound_client,
    client_address,
    internal_redirect_target,
    issue_link,
    plain_url,
    set_folder_cookies,
)
from signing.django.responses import XAccelRedirectResponse, download_disposition, stream_file
from signing.django.serializers import (
    CookieOptionsSerializer,
    FolderCookiesSerializer,
    LinkOptionsSerializer,
    NewLinkSerializer,
    TTLOptionsSerializer,
)
from signing.django.views import IssuedLinkViewSet

from .models import Image
from .serializers import ImageLinkSerializer, ImageSerializer, ImageTitleSerializer, ShareLinkSerializer
from .sharing import NoFolderOfItsOwn, image_folder_cookies, issue_image_folder_cookies, share_signer


def visible_images(request: HttpRequest | Request) -> QuerySet[Image]:
    """Owners see their images, staff see all; anything else is a 404, never a 403."""
    images = Image.objects.select_related("owner")
    user = request.user
    if not user.is_authenticated:
        return images.none()
    return images if user.is_staff else images.filter(owner=user)


NOT_AUTHENTICATED = OpenApiResponse(description="No credentials: send `Authorization: Token …` or log in.")
NOT_FOUND = OpenApiResponse(description="No such image, or not yours (never a hint which).")
BAD_INPUT = OpenApiResponse(description="The input is not valid; the body names each problem by field.")


@extend_schema_view(
    list=extend_schema(summary="List images",
                       description="Your images (all images for staff), newest first, each with a fresh signed link.",
                       responses={200: ImageSerializer(many=True), 401: NOT_AUTHENTICATED}),
    create=extend_schema(summary="Upload an image",
                         description="A multipart upload (`file`, optional `title`). The bytes must be an image "
                                     "within IMAGE_MAX_UPLOAD_BYTES and IMAGE_MAX_PIXELS.",
                         request={"multipart/form-data": ImageSerializer},
                         responses={201: ImageSerializer, 400: BAD_INPUT, 401: NOT_AUTHENTICATED}),
    retrieve=extend_schema(summary="Get one image", description="The image with a fresh signed download link.",
                           responses={200: ImageSerializer, 401: NOT_AUTHENTICATED, 404: NOT_FOUND}),
    partial_update=extend_schema(summary="Change an image's title",
                                 description="Only the title can change; upload a new image to change the file.",
                                 request=ImageTitleSerializer,
                                 responses={200: ImageSerializer, 400: BAD_INPUT, 401: NOT_AUTHENTICATED,
                                            404: NOT_FOUND}),
    destroy=extend_schema(summary="Delete an image",
                          description="Deletes the row, then the file once the transaction commits: every link to "
                                      "it then gets 404.",
                          responses={204: None, 401: NOT_AUTHENTICATED, 404: NOT_FOUND}),
)
class ImageViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Images of the calling user (all images for staff), each with a signed download link."""

    serializer_class = ImageSerializer
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]  # PATCH the title; no PUT

    def get_queryset(self) -> QuerySet[Image]:
        return visible_images(self.request)

    def get_parsers(self) -> list[Any]:
        request = getattr(self, "request", None)  # None while the schema is generated
        if request is not None and request.method == "POST" and "pk" not in self.kwargs:  # create: multipart only
            return [MultiPartParser(), FormParser()]
        return super().get_parsers()

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        image = self.get_object()
        update = ImageTitleSerializer(image, data=request.data, partial=True)
        update.is_valid(raise_exception=True)
        update.save()
        return Response(self.get_serializer(image).data)

    def perform_create(self, serializer: Any) -> None:
        serializer.save(owner=self.request.user)

    @extend_schema(methods=["POST"], summary="Mint a signed link with options", request=LinkOptionsSerializer,
                   responses={201: NewLinkSerializer, 400: BAD_INPUT, 401: NOT_AUTHENTICATED, 404: NOT_FOUND})
    @extend_schema(methods=["GET"], summary="List an image's live links",
                   description="Links minted through this API that are neither revoked nor expired, newest first.",
                   responses={200: ImageLinkSerializer(many=True), 401: NOT_AUTHENTICATED, 404: NOT_FOUND})
    @action(detail=True, methods=["get", "post"], parser_classes=[JSONParser, FormParser])
    def links(self, request: Request, pk: str | None = None) -> Response:
        """Mint a link for the delivery target (ttl, filename, disposition, bind_ip, max_downloads, not_before);
        GET lists the recorded ones."""
        image = self.get_object()
        if request.method == "GET":
            alive = image.issued_links.alive()
            counts = download_counts(link.pk for link in alive if link.max_downloads)  # one query for the page
            context = {"request": request, "_downloads": {link.pk: counts.get(link.pk, 0) if link.max_downloads else None
                                                          for link in alive}}
            return Response(ImageLinkSerializer(alive, many=True, context=context).data)
        options = LinkOptionsSerializer(data=request.data)
        options.is_valid(raise_exception=True)
        given = options.validated_data
        # The image's own name (and the default disposition) only where the target can carry them;
        # what the caller asked for explicitly, the target carries or refuses (400).
        names_downloads = get_link_signer().names_downloads
        explicit_disposition = "disposition" in request.data
        try:
            link, _ = issue_link(
                image.file.name,
                owner=image.owner,
                subject=image.link_subject,
                created_by=request.user,
                ttl=given.get("ttl"),
                filename=given.get("filename") or (image.original_name if names_downloads else None),
                disposition=given["disposition"] if names_downloads or explicit_disposition else None,
                client_ip=bound_client(client_address(request), given["bind_ip"], given.get("bind_ip6")),
                not_before=given.get("not_before"),
                max_downloads=given.get("max_downloads"),
                request=request,
            )
        except ValueError as error:  # an option the signer refuses (UnsafePath is one too): never a 500
            raise ValidationError({"detail": str(error)}, code="invalid") from None
        body = NewLinkSerializer({
            "id": link.link_id, "url": link.url, "expires_at": link.expires_at, "kid": link.kid,
            "not_before": link.not_before_at, "max_downloads": link.max_downloads,
        }).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Make a share link", request=TTLOptionsSerializer,
                   responses={201: ShareLinkSerializer, 400: BAD_INPUT, 401: NOT_AUTHENTICATED, 404: NOT_FOUND})
    @action(detail=True, methods=["post"], parser_classes=[JSONParser, FormParser])
    def share(self, request: Request, pk: str | None = None) -> Response:
        """A share link to /download/image/<id> that works without logging in, until it expires."""
        image = self.get_object()
        options = TTLOptionsSerializer(data=request.data)
        options.is_valid(raise_exception=True)
        token, expires = share_signer().sign(
            image.share_subject, ttl=options.validated_data.get("ttl", link_settings().share_ttl)
        )
        url = absolute_url(f"{reverse('download-image', args=[image.pk])}?token={token}", request)
        body = ShareLinkSerializer({"url": url, "expires_at": datetime.fromtimestamp(expires, tz=timezone.utc)}).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Hand out folder cookies for an image",
        description="Cookies that open every file of the image's folder until they expire (for a page that embeds "
                    "a player, or a client that follows absolute URLs); set on this response and listed in its body. "
                    "409 for an image stored before images had folders of their own: revoking its links moves it "
                    "into one.",
        request=CookieOptionsSerializer,
        responses={200: FolderCookiesSerializer, 400: BAD_INPUT, 401: NOT_AUTHENTICATED, 404: NOT_FOUND,
                   409: OpenApiResponse(description="The image has no folder of its own.")},
    )
    @action(detail=True, methods=["post"], parser_classes=[JSONParser, FormParser])
    def cookies(self, request: Request, pk: str | None = None) -> Response:
        """The delivery target's folder cookies for the image's own folder."""
        image = self.get_object()
        options = CookieOptionsSerializer(data=request.data)
        options.is_valid(raise_exception=True)
        try:
            grant = issue_image_folder_cookies(
                image, created_by=request.user, ttl=options.validated_data.get("ttl"),
                client_ip=bound_client(client_address(request), options.validated_data["bind_ip"],
                                       options.validated_data.get("bind_ip6")),
                not_before=options.validated_data.get("not_before"))
        except NoFolderOfItsOwn as error:
            return Response({"detail": str(error)}, status=status.HTTP_409_CONFLICT)
        except ValueError as error:  # an option the delivery target cannot carry
            raise ValidationError({"detail": str(error)}, code="invalid") from None
        body = FolderCookiesSerializer({**grant.as_json(), "expires_at": grant.expires_at,
                                        "not_before": grant.not_before_at,
                                        "url": plain_url(image.file.name, request)}).data
        response = Response(body)
        set_folder_cookies(response, grant)
        return response

    @extend_schema(summary="Revoke every link to an image", request=None,
                   responses={200: ImageSerializer, 401: NOT_AUTHENTICATED, 404: NOT_FOUND})
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str | None = None) -> Response:
        """Make every outstanding link to this image stop working; returns the image with a fresh link."""
        image = self.get_object()
        try:
            image.revoke_links()
        except (Image.DoesNotExist, FileNotFoundError):  # deleted meanwhile
            raise Http404("no such image") from None
        return Response(self.get_serializer(image).data)


def image_page(request: HttpRequest, image_id: int) -> HttpResponse:
    """``GET /images/<id>/``: a page that shows the image by its plain URL, with the folder cookies
    that open it set on the page (what a page embedding a player does). The owner or staff only
    (log in first); 404 otherwise, 409 for an image without a folder of its own."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    image = get_object_or_404(visible_images(request), pk=image_id)
    try:
        grant = image_folder_cookies(image)
    except ValueError as error:  # no folder of its own, or one the target's cookies cannot serve: never a 500
        return HttpResponse(f"{error}\n", status=409,
                            content_type="text/plain; charset=utf-8")
    response = render(request, "downloads/image_page.html",
                      {"image": image, "url": plain_url(image.file.name, request), "grant": grant})
    response["Cache-Control"] = "private, no-store"
    set_folder_cookies(response, grant)
    return response


class ImageLinkViewSet(IssuedLinkViewSet):
    """``/api/links/<id>/``: the package's per-link API, each link shown with its image's id."""

    serializer_class = ImageLinkSerializer


class ImageDownloadView(APIView):
    """``/download/image/<id>``: Django checks access, nginx sends the bytes (X-Accel-Redirect).

    Access: the owner or staff, or anyone with a valid share token (``?token=``) for this
    image. Without nginx (``SECURE_LINK['SERVE_WITH_DJANGO']``) Django streams the file.
    """

    permission_classes = [permissions.AllowAny]

    @extend_schema(
        parameters=[OpenApiParameter("token", OpenApiTypes.STR, description="A share token from /share/.")],
        responses={
            (200, "*/*"): OpenApiResponse(OpenApiTypes.BINARY, description="The image (sent by nginx)."),
            401: None, 403: None, 404: None, 410: None,
        },
    )
    def get(self, request: Request, image_id: int) -> HttpResponseBase:
        image = self._authorised_image(request, image_id)
        disposition = download_disposition(image.original_name)
        if link_settings().serve_with_django:
            return stream_file(settings.MEDIA_ROOT, image.file.name, request=request,
                               content_type=image.content_type, disposition=disposition)
        try:
            target = internal_redirect_target(image.file.name)
        except LinkError:  # a stored name that could leave the media root: never follow it
            raise Http404("no such file") from None
        return XAccelRedirectResponse(target, content_type=image.content_type, disposition=disposition)

    def _authorised_image(self, request: Request, image_id: int) -> Image:
        token = request.query_params.get("token")
        if token is not None:
            image = Image.objects.filter(pk=image_id).first()
            try:
                subject, _ = share_signer().granted(token)
            except LinkError as error:
                raise api_exception_for(error) from None
            if image is None and subject.startswith(f"image:{image_id}:"):
                raise Http404("no such image")  # a genuine token for an image deleted since
            if image is None or subject != image.share_subject:  # another image, or revoked
                raise LinkInvalid()
            return image
        if not request.user.is_authenticated:
            raise NotAuthenticated()
        return get_object_or_404(visible_images(request), pk=image_id)
