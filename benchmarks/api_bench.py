"""Section 3: listing 100 images a page, with and without signed links on each.

Two references split the cost: two plain fields in the links' place (what any two DRF
fields cost), and both link fields with one fixed link instead of signing (the fields and
their longer JSON without the signing). What is left is signing inside the page, compared
with the same call (the page's LinkIssuer, the same names) in a tight loop."""

from __future__ import annotations

import time
from collections.abc import Callable

from .budget import BUDGET
from .results import Report
from .setup import BenchData

ROUNDS = 200


def run(report: Report, data: BenchData, progress: Callable[[str], None]) -> None:
    from django.contrib.auth import get_user_model
    from rest_framework import serializers
    from rest_framework.test import APIRequestFactory, force_authenticate

    from app.downloads.models import Image
    from app.downloads.serializers import ImageSerializer
    from app.downloads.views import ImageViewSet

    class UnsignedImageSerializer(ImageSerializer):
        class Meta(ImageSerializer.Meta):
            fields = [f for f in ImageSerializer.Meta.fields if f not in ("download_url", "expires_at")]

    class PlainFieldsImageSerializer(UnsignedImageSerializer):
        """Reference: two ordinary fields in their place (the file's name, a string), no signing."""

        download_url = serializers.CharField(source="file.name", read_only=True)
        expires_at = serializers.CharField(source="original_name", read_only=True)

        class Meta(UnsignedImageSerializer.Meta):
            fields = [*UnsignedImageSerializer.Meta.fields, "download_url", "expires_at"]

    from signing.django.fields import SignedFileURLField
    from signing import SignedLink

    fixed = SignedLink("http://testserver/media/images/2026/11/" + "0" * 32 + ".png?md5=" + "A" * 22
                       + "&expires=1790000000&kid=k1&disposition=attachment&filename=photo%2042.png",
                       "/media/images/2026/11/" + "0" * 32 + ".png", 1790000000, "k1")

    class PresignedURLField(SignedFileURLField):
        """Measurement only: every object gets one fixed link of the same length, unsigned."""

        def _sign(self, issuer: object, instance: object, name: str) -> SignedLink:
            return fixed

    class PresignedImageSerializer(ImageSerializer):
        download_url = PresignedURLField(file_field="file", filename="original_name")

    owner = get_user_model().objects.create_user("lister")
    Image.objects.bulk_create(
        Image(owner=owner, file=f"images/2026/11/{index:032x}.png", original_name=f"photo {index}.png",
              width=640, height=480, size=12345, content_type="image/png")
        for index in range(100)
    )
    factory = APIRequestFactory()
    views = {
        "with signed links": ImageViewSet.as_view({"get": "list"}),
        "without signed links": ImageViewSet.as_view({"get": "list"}, serializer_class=UnsignedImageSerializer),
        "two plain fields instead (reference)": ImageViewSet.as_view({"get": "list"}, serializer_class=PlainFieldsImageSerializer),
        "both fields, a fixed link instead of signing (reference)": ImageViewSet.as_view(
            {"get": "list"}, serializer_class=PresignedImageSerializer),
    }

    def list_once(view: Callable[..., object]) -> float:
        request = factory.get("/api/images/", {"page_size": 100})
        force_authenticate(request, user=owner)
        start = time.perf_counter()
        response = view(request)
        response.render()  # type: ignore[attr-defined]
        assert response.status_code == 200 and len(response.data["results"]) == 100  # type: ignore[attr-defined]
        return time.perf_counter() - start

    progress("api: listing 100 images a page, alternating with links, without, and with two plain fields")
    for view in views.values():
        list_once(view)  # warm up
    timings: dict[str, list[float]] = {name: [] for name in views}
    for _ in range(BUDGET.count(ROUNDS, 3)):
        for name, view in views.items():
            timings[name].append(list_once(view))
    section = f"API: GET /api/images/?page_size=100 (in process, median of {ROUNDS} alternating runs)"
    medians = {name: sorted(values)[len(values) // 2] for name, values in timings.items()}
    for name, median in medians.items():
        report.add(section, name, 1 / median, "pages/s", f"median {median * 1000:.1f} ms")
    without = medians["without signed links"]
    per_object = {name: (median - without) / 100 * 1e6 for name, median in medians.items()}
    in_page = per_object["with signed links"] - per_object["both fields, a fixed link instead of signing (reference)"]
    tight = _tight_loop_us(factory, owner)
    report.add(section, "signing inside the page, per link", in_page, "µs",
               "the page with signed links minus the page with one fixed link")
    report.add(section, "the same signing in a tight loop, per link", tight, "µs",
               "the page's LinkIssuer.sign over the same 100 names and download names")
    report.target("API: signing inside the page / the same signing in a tight loop, per link", in_page / tight, 2,
                  higher_is_better=False,
                  note=f"{in_page:.1f} µs a link in the page, {tight:.1f} µs in a tight loop; the page without links "
                       f"costs {without / 100 * 1e6:.0f} µs an object, with them {medians['with signed links'] / without:.2f}x")
    for name in ("two plain fields instead (reference)", "both fields, a fixed link instead of signing (reference)",
                 "with signed links"):
        report.add(section, f"{name}: cost per object above without", per_object[name], "µs",
                   f"{medians[name] / without:.2f}x the page without")


def _tight_loop_us(factory: object, owner: object) -> float:
    """µs per link of the page's own signing call (LinkIssuer.sign, as SignedFileURLField makes it), in a loop."""
    from rest_framework.request import Request

    from signing.django.links import LinkIssuer
    from app.downloads.models import Image

    request = Request(factory.get("/api/images/", {"page_size": 100}))  # type: ignore[attr-defined]
    items = [(image.file.name, image.original_name) for image in Image.objects.filter(owner=owner)[:100]]
    best = float("inf")
    for _ in range(BUDGET.count(5, 1)):
        issuer = LinkIssuer(request, ttl=None)
        start = time.perf_counter()
        for _ in range(20):
            for name, filename in items:
                issuer.sign(name, filename=filename, disposition=None, name_if_possible=True)
        best = min(best, (time.perf_counter() - start) / (20 * len(items)) * 1e6)
    return best
