"""Issued links in the admin: look them up by id, follow their downloads, revoke them one by one."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from .counting import download_counts
from .models import IssuedLink


@admin.register(IssuedLink)
class IssuedLinkAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "subject", "owner", "created_by", "created_at", "expires_at", "not_before", "max_downloads",
                    "downloads", "status"]
    list_filter = ["kind", "created_at", "expires_at", "revoked_at"]
    search_fields = ["id", "subject", "path", "owner__username", "created_by__username"]
    readonly_fields = ["id", "kind", "subject", "path", "owner", "created_by", "created_at", "kid", "expires_at", "not_before",
                       "max_downloads", "revoked_at", "downloads", "status"]
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # links are minted by the API, which hands out their URL once

    @admin.action(description="Revoke the selected links (only them)")
    def revoke(self, request: HttpRequest, queryset: QuerySet[IssuedLink]) -> None:
        revoked = sum(1 for link in queryset if link.revoke())
        self.message_user(request, f"Revoked {revoked} link(s): 403 at every verifier within the fleet bound "
                                   "(a download-limited one at the origins at once).", messages.SUCCESS)

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        changelist = super().get_changelist_instance(request)
        counts = download_counts(link.id for link in changelist.result_list if link.max_downloads)  # one query
        for link in changelist.result_list:
            link.counted_downloads = counts.get(link.id, 0) if link.max_downloads else None
        return changelist

    @staticmethod
    def _taken(link: IssuedLink) -> int | None:
        """The link's downloads: counted for the whole page, else read for this link."""
        return link.counted_downloads if hasattr(link, "counted_downloads") else link.downloads()

    @admin.display(description="Downloads")
    def downloads(self, link: IssuedLink) -> str:
        taken = self._taken(link)
        return "-" if taken is None else f"{taken} / {link.max_downloads}"

    @admin.display(description="Status")
    def status(self, link: IssuedLink) -> str:
        return str(link.status(downloads=self._taken(link)).label)
