"""Files in an S3-compatible bucket behind the same links: django-storages' S3 backend, signed.

One option puts a storage's files in a bucket: its URL (:class:`signing.buckets.Bucket`)::

    STORAGES = {"default": {
        "BACKEND": "signing.django.s3.SignedS3Storage",
        "OPTIONS": {"bucket": "s3://media?endpoint=https://s3.eu-west-1.amazonaws.com&region=eu-west-1"
                              "&addressing=virtual&credentials=/srv/app/var/s3.credentials"},
    }, ...}

Uploads, deletes, copies and ``exists`` go through django-storages' ``S3Storage`` (boto3), with
the app's credentials (read and write); ``url()`` is our signed link, which the origin nginx
checks, then serves from its cache or fetches from the bucket with its own read-only
credentials (nginx/secure_link_s3.conf). Objects are private: nothing is readable without a
signature. Needs ``pip install 'signed-downloads[django,s3]'`` (django-storages and boto3).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from storages.backends.s3 import S3Storage
from storages.utils import clean_name

from ..buckets import Bucket
from .storage import SignedURLs


class SignedS3Storage(SignedURLs, S3Storage):
    """django-storages' ``S3Storage`` whose URLs are signed nginx links, its bucket one option.

    ``bucket`` is the bucket's URL (or a :class:`~signing.buckets.Bucket`); ``ttl`` and
    ``disposition`` are :class:`~signing.django.storage.SignedURLs`'; any other option is
    django-storages' own (``object_parameters``, ``max_memory_size``...) except ``location``: an
    object's key is the file's name, the path its link names and the origin fetches.
    """

    def __init__(self, *, bucket: str | Bucket, **options: Any) -> None:
        found = bucket if isinstance(bucket, Bucket) else Bucket.parse(bucket)
        credentials = found.credentials()
        self.bucket_address = found
        super().__init__(**{
            "bucket_name": found.name, "endpoint_url": found.endpoint, "region_name": found.region,
            "addressing_style": found.addressing, "signature_version": "s3v4",
            "access_key": credentials.key_id, "secret_key": credentials.secret,
            "default_acl": None, "querystring_auth": False, "file_overwrite": False,
            **options,
        })
        if self.location:  # the option, or django-storages' AWS_LOCATION setting
            raise ImproperlyConfigured(
                "SignedS3Storage keeps each file at the key of its name (the path its link names and the origin "
                "fetches): remove the 'location' option (and AWS_LOCATION), or give the files their own bucket")

    def copy(self, old_name: str, new_name: str) -> None:
        """Give ``old_name``'s object a second name in the bucket, server-side (S3 has no rename), with
        the storage's object parameters (``object_parameters``: encryption, cache headers...); a
        multipart copy above the 5 GB of a single one (boto3's managed copy)."""
        source = {"Bucket": self.bucket_name, "Key": self._normalize_name(clean_name(old_name))}
        target = self._normalize_name(clean_name(new_name))
        self.bucket.Object(target).copy(source, ExtraArgs=self.get_object_parameters(target) or None)
