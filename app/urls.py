from django.contrib import admin
from django.contrib.auth.views import LoginView
from django.urls import include, path
from django.views.generic import TemplateView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from app.api_docs import local_assets_only
from app.downloads.views import ImageDownloadView, ImageLinkViewSet, ImageViewSet, image_page

router = DefaultRouter()
router.register("images", ImageViewSet, basename="image")
router.register("links", ImageLinkViewSet, basename="link")  # signing.django's per-link API

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
    # signing.django's own routes: the key set and the revoked link ids for the verifiers' sync
    # agents (docs/fleet.md), and /media/ checked in Python when no nginx is in front.
    path("", include("signing.django.urls")),
]
