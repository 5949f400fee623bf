from django.contrib import admin
from django.contrib.auth.views import LoginView
from django.urls import include, path, re_path
from django.views.generic import TemplateView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from app.api_docs import local_assets_only
from app.downloads.conf import link_settings
from app.downloads.fleet import keys_for_verifiers, revocations_for_verifiers
from signing.keysync import KEYS_PATH, REVOCATIONS_PATH
from app.downloads.views import ImageDownloadView, ImageViewSet, LinkViewSet, image_page, serve_signed_media

router = DefaultRouter()
router.register("images", ImageViewSet, basename="image")
router.register("links", LinkViewSet, basename="link")

urlpatterns = [
    path("", TemplateView.as_view(template_name="downloads/home.html"), name="home"),
    path("admin/", admin.site.urls),
    path("api/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", local_assets_only(SpectacularSwaggerView.as_view(url_name="schema")), name="api-docs"),
    path("api/redoc/", local_assets_only(SpectacularRedocView.as_view(url_name="schema")), name="api-redoc"),
    path("download/image/<int:image_id>", ImageDownloadView.as_view(), name="download-image"),
    # A page showing an image through folder cookies (docs/api.md#folder-cookies), and the
    # login it asks for (owners need not be staff, so not the admin's).
    path("images/<int:image_id>/", image_page, name="image-page"),
    path("accounts/login/", LoginView.as_view(template_name="downloads/login.html"), name="login"),
    # The verifiers' sync agents pull the key set here, with the fleet token (docs/fleet.md).
    path(KEYS_PATH.lstrip("/"), keys_for_verifiers, name="secure-link-keys"),
    # ... and the revoked link ids, which they keep as files for nginx (docs/fleet.md).
    path(REVOCATIONS_PATH.lstrip("/"), revocations_for_verifiers, name="secure-link-revocations"),
    # Reached only when nginx is not in front (runserver, or SERVE_WITH_DJANGO): the view
    # refuses everything unless SECURE_LINK['SERVE_WITH_DJANGO'] is on.
    re_path(r"^" + link_settings().media_url.lstrip("/") + r"(?P<path>.*)$", serve_signed_media, name="signed-media"),
]
