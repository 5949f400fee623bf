"""The image service in the admin (issued links have their own page: signing.django.admin)."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from signing import LinkError
from signing.django.links import sign_file

from .models import Image


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
