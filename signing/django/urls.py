"""The app's own routes, for the project's ``urlpatterns``: ``path("", include("signing.django.urls"))``.

- ``/_secure_link/keys`` and ``/_secure_link/revocations``: the key set and the revoked link ids
  for the verifiers' sync agents, with the fleet token only (docs/fleet.md);
- ``/_secure_link/downloads/take`` and ``…/settle``: the download counter the origins ask for
  download-limited links, with the counter token only (docs/per-link.md);
- ``MEDIA_URL…``: the files, each link checked in Python, for a server without nginx in front
  (``SECURE_LINK['SERVE_WITH_DJANGO']``; 404 otherwise: nginx answers these itself).

The per-link API is a DRF viewset the project registers under its own API prefix:
``router.register("links", signing.django.views.IssuedLinkViewSet, basename="link")``.
"""

from django.urls import path, re_path

from ..fleet.protocol import KEYS_PATH, REVOCATIONS_PATH, SETTLE_PATH, TAKE_PATH
from .conf import link_settings
from .views import keys_for_verifiers, revocations_for_verifiers, serve_signed_media, settle_download, take_download

urlpatterns = [
    path(KEYS_PATH.lstrip("/"), keys_for_verifiers, name="secure-link-keys"),
    path(REVOCATIONS_PATH.lstrip("/"), revocations_for_verifiers, name="secure-link-revocations"),
    path(TAKE_PATH.lstrip("/"), take_download, name="secure-link-take-download"),
    path(SETTLE_PATH.lstrip("/"), settle_download, name="secure-link-settle-download"),
    re_path(r"^" + link_settings().media_url.lstrip("/") + r"(?P<path>.*)$", serve_signed_media, name="signed-media"),
]
