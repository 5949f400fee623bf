"""Issued links in the admin: look them up by id, follow their downloads, revoke them one by one."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from .models import IssuedLink


@admin.register(IssuedLink)
class IssuedLinkAdmin(admin.ModelAdmin):
    list_display = ["id", "subject", "owner", "created_by", "created_at", "expires_at", "not_before", "max_downloads",
                    "downloads", "status"]
    list_filter = ["created_at", "expires_at", "revoked_at"]
    search_fields = ["id", "subject", "path", "owner__username", "created_by__username"]
    readonly_fields = ["id", "subject", "path", "owner", "created_by", "created_at", "kid", "expires_at", "not_before",
                       "max_downloads", "revoked_at", "downloads", "status"]
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
