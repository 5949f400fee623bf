"""Issued links, by their link id: what the per-link API, the admin and the fleet read."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from .conf import link_settings


class IssuedLinkStatus(models.TextChoices):
    """Where an issued link stands now (nginx decides the same way): its lifecycle, not a token's check."""

    ACTIVE = "active"
    REVOKED = "revoked"
    USED_UP = "used_up"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"


class IssuedLinkQuerySet(models.QuerySet["IssuedLink"]):
    def alive(self) -> IssuedLinkQuerySet:
        """Links not revoked and not expired (used-up links are told apart by their count)."""
        return self.filter(revoked_at__isnull=True, expires_at__gte=timezone.now().replace(microsecond=0))

    def visible_to(self, user: object) -> IssuedLinkQuerySet:
        """The links ``user`` may see and revoke: their own, or every link for staff."""
        if not getattr(user, "is_authenticated", False):
            return self.none()
        return self if getattr(user, "is_staff", False) else self.filter(owner=user)


class IssuedLink(models.Model):
    """One signed link handed out (:func:`signing.django.links.issue_link`), by its link id.

    nginx needs none of this to serve it: the row is for its ``owner`` (status, downloads,
    revocation), and a revocation reaches nginx as a file (:class:`signing.LinkState`).
    ``subject`` names what it is a link to in the project's terms (``"image:42"``); ``path`` is
    the URL path it signs (None for links recorded before paths were).
    """

    id = models.CharField(primary_key=True, max_length=64, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.CASCADE, related_name="+")
    subject = models.CharField(max_length=200, blank=True, editable=False)
    path = models.CharField(max_length=1024, null=True, blank=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    kid = models.CharField(max_length=64, editable=False)
    expires_at = models.DateTimeField(editable=False)
    not_before = models.DateTimeField(null=True, blank=True, editable=False)
    max_downloads = models.PositiveIntegerField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = IssuedLinkQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "id"]
        indexes = [models.Index(fields=["subject", "expires_at"]), models.Index(fields=["revoked_at", "expires_at"])]

    def __str__(self) -> str:
        return f"link {self.id}" + (f" to {self.subject}" if self.subject else "")

    def downloads(self) -> int | None:
        """Downloads taken so far, for a download-limited link (counted by the origin nginx)."""
        return link_settings().link_state.downloads(self.id) if self.max_downloads else None

    def status(self, *, downloads: int | None = None) -> IssuedLinkStatus:
        """Revoked, then expired, then not yet valid, then used up, else active. ``downloads`` is
        the count when the caller has it already (else it is read from the journal)."""
        now = timezone.now()
        if self.revoked_at is not None:
            state = IssuedLinkStatus.REVOKED
        elif self.expires_at.timestamp() < int(now.timestamp()):  # nginx: expires < now is expired
            state = IssuedLinkStatus.EXPIRED
        elif self.not_before is not None and self.not_before > now:
            state = IssuedLinkStatus.NOT_YET_VALID
        elif self.max_downloads is not None and \
                self.max_downloads <= (downloads if downloads is not None else self.downloads() or 0):
            state = IssuedLinkStatus.USED_UP
        else:
            state = IssuedLinkStatus.ACTIVE
        return IssuedLinkStatus(state)  # a member, typed as one (TextChoices members type as str)

    def revoke(self) -> bool:
        """Refuse this link, and only it, from now on: at the origin at once, at the edges
        within the fleet bound (their agents pull the list). False if it was already revoked."""
        updated = IssuedLink.objects.filter(pk=self.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        link_settings().link_state.revoke(self.id, expires=int(self.expires_at.timestamp()))  # again is harmless
        self.refresh_from_db(fields=["revoked_at"])
        return bool(updated)
