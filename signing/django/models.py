"""Issued links, by their link id: what the per-link API, the admin and the fleet read."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone



class IssuedLinkStatus(models.TextChoices):
    """Where an issued link stands now (nginx decides the same way): its lifecycle, not a token's check."""

    ACTIVE = "active"
    REVOKED = "revoked"
    USED_UP = "used_up"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"


class GrantKind(models.TextChoices):
    """What an issued link opens: one file, or every file below a folder (by a directory link or a cookie)."""

    FILE = "file"
    DIRECTORY = "directory"
    COOKIE = "cookie"


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
    revocation); a revocation reaches every verifier through its sync agent, and the origins'
    download counter (:mod:`signing.django.counting`) refuses a revoked limited link at once.
    ``subject`` names what it is a link to in the project's terms (``"image:42"``); ``path`` is
    the URL path it signs (None for links recorded before paths were): a file's, or for a
    directory link or a folder cookie (``kind``) the folder's, ending with ``/``.
    """

    id = models.CharField(primary_key=True, max_length=64, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.CASCADE, related_name="+")
    subject = models.CharField(max_length=200, blank=True, editable=False)
    path = models.CharField(max_length=1024, null=True, blank=True, editable=False)
    kind = models.CharField(max_length=16, choices=GrantKind.choices, default=GrantKind.FILE, editable=False)
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
        """Downloads taken so far, for a download-limited link: the count the origins ask."""
        from .counting import downloads  # the counter imports this module

        return downloads(self.id) if self.max_downloads else None

    def status(self, *, downloads: int | None = None) -> IssuedLinkStatus:
        """Revoked, then expired, then not yet valid, then used up, else active. ``downloads`` is
        the count when the caller has it already (else it is read from the counter's table)."""
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
        """Refuse this link, and only it, from now on: at every verifier within the fleet bound
        (their agents pull the list), and a download-limited one at every origin's counter at
        once. False if it was already revoked."""
        updated = IssuedLink.objects.filter(pk=self.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.refresh_from_db(fields=["revoked_at"])
        return bool(updated)


class DownloadCount(models.Model):
    """The downloads taken of one download-limited link: the one count every origin asks.

    Written only by :mod:`signing.django.counting` (atomic statements), one row per limited
    link that has been asked for; links minted without an :class:`IssuedLink` row are counted
    too. ``resume_point`` and ``resume_open`` are the link's resume credit (docs/per-link.md).
    """

    link_id = models.CharField(primary_key=True, max_length=64, editable=False)
    downloads = models.PositiveIntegerField(default=0)
    expires = models.BigIntegerField(help_text="the link's expires (Unix time): the row can go after it")
    resume_point = models.BigIntegerField(null=True, blank=True)
    resume_open = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["expires"])]

    def __str__(self) -> str:
        return f"downloads of link {self.link_id}: {self.downloads}"


class DownloadTake(models.Model):
    """One request that took a download (or a resume credit) of a limited link, by the request id
    the first nginx to see it gave it: an edge that retries the request at another origin sends
    the same id, and the counter answers it again without taking a second download."""

    link_id = models.CharField(max_length=64, editable=False)
    request_id = models.CharField(max_length=32, editable=False)
    took = models.CharField(max_length=16, editable=False)
    expires = models.BigIntegerField()
    reused = models.BooleanField(default=False, help_text="a retry was answered with it: the retry owns the download")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["link_id", "request_id"], name="one_take_per_request")]
        indexes = [models.Index(fields=["expires"])]
