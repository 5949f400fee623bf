"""Revoking one image's links: the API action, the admin action and the management command."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from app.downloads.models import Image

pytestmark = pytest.mark.django_db(transaction=True)  # revocation acts once the transaction commits


def share_url(client, image) -> str:
    return client.post(f"/api/images/{image.pk}/share/", {"ttl": 600}, format="json").data["url"]


def stored_path(image: Image) -> Path:
    return Path(settings.MEDIA_ROOT) / image.file.name


def test_revoke_moves_the_file_and_refuses_old_share_tokens(user, make_image, client_for):
    image = make_image(user)
    client = client_for(user)
    old_path, old_share = stored_path(image), share_url(client, image)
    content = old_path.read_bytes()
    response = client.post(f"/api/images/{image.pk}/revoke/")
    assert response.status_code == 200
    image.refresh_from_db()
    assert not old_path.exists() and stored_path(image).read_bytes() == content
    assert image.file.name in response.data["download_url"]  # the fresh link names the new file
    anonymous = client_for()
    assert anonymous.get(old_share.replace("http://testserver", "")).status_code == 403
    assert anonymous.get(share_url(client, image).replace("http://testserver", "")).status_code == 200


def test_only_owner_and_staff_may_revoke(user, other_user, staff_user, make_image, client_for):
    image = make_image(user)
    assert client_for(other_user).post(f"/api/images/{image.pk}/revoke/").status_code == 404
    assert client_for().post(f"/api/images/{image.pk}/revoke/").status_code == 401
    assert client_for(staff_user).post(f"/api/images/{image.pk}/revoke/").status_code == 200


def test_admin_action_revokes_the_selected_images(user, staff_user, make_image, client):
    staff_user.is_superuser = True
    staff_user.save()
    images = [make_image(user), make_image(user)]
    old_paths = [stored_path(image) for image in images]
    client.force_login(staff_user)
    response = client.post("/admin/downloads/image/", {"action": "revoke_links", "_selected_action": [i.pk for i in images]},
                           follow=True)
    assert response.status_code == 200 and "Revoked every link to 2 image(s)" in response.content.decode()
    assert not any(path.exists() for path in old_paths)
    assert all(stored_path(image).is_file() for image in Image.objects.all())


def test_management_command_revokes_and_refuses_unknown_ids(user, make_image):
    image = make_image(user)
    old_path = stored_path(image)
    with pytest.raises(CommandError, match="no image with id 999999; nothing was revoked"):
        call_command("revoke_links", str(image.pk), "999999")
    assert old_path.exists()
    out = StringIO()
    call_command("revoke_links", str(image.pk), stdout=out)
    assert f"image {image.pk}: every earlier link revoked" in out.getvalue() and not old_path.exists()


def test_deleting_after_a_revoke_removes_the_new_file(user, make_image):
    image = make_image(user)
    stale = Image.objects.get(pk=image.pk)  # loaded before the revoke, as a concurrent request would
    old_path = stored_path(image)
    image.revoke_links()
    new_path = stored_path(image)
    assert (old_path.exists(), new_path.exists()) == (False, True)
    stale.delete()
    assert not new_path.exists()
