"""Issued links move to the package's app (``signing.django``, label ``secure_links``), rows and all.

The old rows name their image by a foreign key; the new ones by subject ``image:<id>``, with the
image's owner as the link's owner (who may see and revoke it) and no path (none was recorded).
Every other column is copied as it is, ``created_at`` included; link ids do not change, so the
revocation files and download counts nginx keeps by id still belong to the same links. The
copy and the removal of the old table run in one migration (one transaction where the database
has transactional DDL, PostgreSQL and SQLite both).
"""

from django.db import migrations

COPIED = ("id", "created_by_id", "created_at", "kid", "expires_at", "not_before", "max_downloads", "revoked_at")
BATCH = 1000


def _keeping_created_at(model):
    """The historical model with ``created_at`` taken as given (``auto_now_add`` would stamp now)."""
    model._meta.get_field("created_at").auto_now_add = False
    return model


def copy_to_secure_links(apps, schema_editor):
    old_links = apps.get_model("downloads", "IssuedLink")
    new_link = _keeping_created_at(apps.get_model("secure_links", "IssuedLink"))
    database = schema_editor.connection.alias
    batch = []
    for old in old_links.objects.using(database).select_related("image").order_by("pk").iterator(chunk_size=BATCH):
        batch.append(new_link(owner_id=old.image.owner_id, subject=f"image:{old.image_id}", path=None,
                              **{name: getattr(old, name) for name in COPIED}))
        if len(batch) == BATCH:
            new_link.objects.using(database).bulk_create(batch)
            batch = []
    new_link.objects.using(database).bulk_create(batch)


def copy_back(apps, schema_editor):
    """Undo: the links of images that still exist go back to the old model (owner and path are dropped)."""
    old_link = _keeping_created_at(apps.get_model("downloads", "IssuedLink"))
    new_links = apps.get_model("secure_links", "IssuedLink")
    images = set(apps.get_model("downloads", "Image").objects.using(schema_editor.connection.alias)
                 .values_list("pk", flat=True))
    database = schema_editor.connection.alias
    restored = []
    for link in new_links.objects.using(database).filter(subject__startswith="image:").iterator(chunk_size=BATCH):
        image_id = link.subject.partition(":")[2]
        if image_id.isdigit() and int(image_id) in images:
            restored.append(old_link(image_id=int(image_id), **{name: getattr(link, name) for name in COPIED}))
    old_link.objects.using(database).bulk_create(restored, batch_size=BATCH)
    new_links.objects.using(database).filter(pk__in=[link.pk for link in restored]).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("downloads", "0002_issued_links"),
        ("secure_links", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(copy_to_secure_links, copy_back),
        migrations.DeleteModel(name="IssuedLink"),
    ]
