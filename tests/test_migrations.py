"""A database made before the package layout (images, issued links with counts, revocations)
migrates with nothing lost, on SQLite and on PostgreSQL (``--database=postgresql``), and back.

The database is built at the migrations of that layout (``downloads 0002``: issued links were the
image service's, by a foreign key to their image), rows are written through its historical
models, and the download journal the origin nginx kept then is written beside it; then
``migrate`` and ``import_download_journal`` run as a deployment would run them.
"""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from django.core.management import call_command

from tests.app_fixtures import png_bytes

BEFORE = [("downloads", "0002_issued_links"), ("secure_links", None)]
AFTER = [("downloads", "0003_issued_links_move_to_secure_links"), ("secure_links", "0003_grant_kind")]

pytestmark = [pytest.mark.database, pytest.mark.django_db(transaction=True)]


def migrate(targets):
    """Migrate to ``targets``; the models of that state."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return MigrationExecutor(connection).loader.project_state([t for t in targets if t[1] is not None]).apps


@pytest.fixture
def database_before_the_package(settings, tmp_path):
    """The database at the old layout; put back at the newest migrations afterwards."""
    apps = migrate(BEFORE)
    yield apps
    migrate(AFTER)


def old_rows(apps):
    """An owner, two images and three issued links of the old layout: plain, limited (two of three
    downloads taken), revoked; one created by staff for the owner's image."""
    user_model = apps.get_model("auth", "User")
    owner = user_model.objects.create(username="owner")
    staff = user_model.objects.create(username="staff", is_staff=True)
    image_model, link_model = apps.get_model("downloads", "Image"), apps.get_model("downloads", "IssuedLink")
    images = []
    for letter in "ab":
        name = f"images/2026/11/{letter * 32}/{letter * 32}.png"
        (Path(django_settings.MEDIA_ROOT) / name).parent.mkdir(parents=True, exist_ok=True)
        (Path(django_settings.MEDIA_ROOT) / name).write_bytes(png_bytes())
        images.append(image_model.objects.create(owner=owner, file=name, original_name=f"{letter}.png",
                                                 content_type="image/png"))
    created = timezone.now().replace(microsecond=0) - timedelta(days=2)
    expires = timezone.now().replace(microsecond=0) + timedelta(days=1)
    links = [
        link_model.objects.create(id="PlainLink0000001", image=images[0], created_by=owner, kid="k1", expires_at=expires),
        link_model.objects.create(id="LimitedLink00002", image=images[0], created_by=staff, kid="k1", expires_at=expires,
                                  max_downloads=3, not_before=created),
        link_model.objects.create(id="RevokedLink00003", image=images[1], created_by=owner, kid="k2", expires_at=expires,
                                  revoked_at=created + timedelta(hours=1)),
    ]
    link_model.objects.filter(pk__in=[link.pk for link in links]).update(created_at=created)  # auto_now_add
    return owner, images, created, expires


def test_issued_links_move_to_the_packages_app_with_every_row_and_their_state(database_before_the_package, client_for,
                                                                               tmp_path):
    owner, images, created, expires = old_rows(database_before_the_package)
    journal = tmp_path / "downloads.journal"  # as the origin's workers appended it: two taken, one given back
    stamp = int(expires.timestamp())
    journal.write_text(f"LimitedLink00002 +1 {stamp}\nLimitedLink00002 +1 {stamp}\nLimitedLink00002 +1 {stamp}\n"
                       f"LimitedLink00002 -1 {stamp}\nExpiredLink00004 +1 1000\nnot a line\n")
    migrate(AFTER)
    out = StringIO()
    call_command("import_download_journal", str(journal), stdout=out)
    assert "1 live link(s) with downloads, 1 count(s) set or raised; 1 line(s)" in out.getvalue()
    call_command("import_download_journal", str(journal), stdout=StringIO())  # again: nothing changes

    from django.contrib.auth import get_user_model

    from signing.django.models import IssuedLink

    links = {link.id: link for link in IssuedLink.objects.all()}
    assert sorted(links) == ["LimitedLink00002", "PlainLink0000001", "RevokedLink00003"]
    for link in links.values():
        assert link.owner_id == owner.pk and link.created_at == created and link.expires_at == expires
        assert link.path is None and link.kind == "file"  # the old layout recorded no path, and file links only
    assert [links[i].subject for i in sorted(links)] == [f"image:{images[0].pk}", f"image:{images[0].pk}",
                                                         f"image:{images[1].pk}"]
    assert links["LimitedLink00002"].created_by.username == "staff" and links["LimitedLink00002"].not_before == created
    assert (links["LimitedLink00002"].kid, links["RevokedLink00003"].kid) == ("k1", "k2")
    # The state nginx keeps by link id still belongs to the same links, as the API tells their owner.
    client = client_for(get_user_model().objects.get(pk=owner.pk))
    limited = client.get("/api/links/LimitedLink00002/").json()
    assert (limited["downloads"], limited["max_downloads"], limited["status"], limited["image"]) == (2, 3, "active",
                                                                                                        images[0].pk)
    assert client.get("/api/links/RevokedLink00003/").json()["status"] == "revoked"
    assert [entry["id"] for entry in client.get(f"/api/images/{images[0].pk}/links/").json()] == [
        "LimitedLink00002", "PlainLink0000001"]
    with connection.cursor() as cursor:
        assert "downloads_issuedlink" not in connection.introspection.table_names(cursor)


def test_the_move_can_be_undone(database_before_the_package):
    old_rows(database_before_the_package)
    migrate(AFTER)
    apps = migrate(BEFORE)
    restored = apps.get_model("downloads", "IssuedLink").objects.order_by("id")
    assert [(link.id, link.image.original_name, link.max_downloads) for link in restored] == [
        ("LimitedLink00002", "a.png", 3), ("PlainLink0000001", "a.png", None), ("RevokedLink00003", "b.png", None)]
