from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from signing import LinkError

from .links import sign_file
from .models import Image, IssuedLink


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["__str__", "owner", "original_name", "width", "height", "size", "created_at", "download"]
    list_filter = ["content_type", "created_at"]
    search_fields = ["title", "original_name", "owner__username"]
    readonly_fields = ["width", "height", "size", "content_type", "created_at", "download"]
    actions = ["revoke_links"]

    @admin.action(description="Revoke every link to the selected images")
    def revoke_links(self, request: HttpRequest, queryset: QuerySet[Image]) -> None:
        images = list(queryset)
        for image in images:
            image.revoke_links()
        self.message_user(
            request, f"Revoked every link to {len(images)} image(s): old links now get 404 (signed) or 403 (share).",
            messages.SUCCESS,
        )

    @admin.display(description="Signed link")
    def download(self, image: Image) -> str:
        if not image.file:
            return "-"
        try:
            link = sign_file(image.file.name, filename=image.original_name, name_if_possible=True)
        except LinkError as error:
            return f"cannot sign: {error.message}"
        return format_html('<a href="{}">download</a> (until {} UTC)', link.url, f"{link.expires_at:%Y-%m-%d %H:%M}")


@admin.register(IssuedLink)
class IssuedLinkAdmin(admin.ModelAdmin):
    list_display = ["id", "image", "created_by", "created_at", "expires_at", "not_before", "max_downloads",
                    "downloads", "status"]
    list_filter = ["created_at", "expires_at", "revoked_at"]
    search_fields = ["id", "image__title", "image__original_name", "created_by__username"]
    readonly_fields = ["id", "image", "created_by", "created_at", "kid", "expires_at", "not_before", "max_downloads",
                       "revoked_at", "downloads", "status"]
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # links are minted by the API, which hands out their URL once

    @admin.action(description="Revoke the selected links (only them)")
    def revoke(self, request: HttpRequest, queryset: QuerySet[IssuedLink]) -> None:
        revoked = sum(1 for link in queryset if link.revoke())
        self.message_user(request, f"Revoked {revoked} link(s): 403 at the origin now, at the edges within the "
                                   "fleet bound.", messages.SUCCESS)

    @admin.display(description="Downloads")
    def downloads(self, link: IssuedLink) -> str:
        taken = link.downloads()
        return "-" if taken is None else f"{taken} / {link.max_downloads}"

    @admin.display(description="Status")
    def status(self, link: IssuedLink) -> str:
        return str(link.status().label)
