"""Test settings: app.settings with a fixed secret, a test key set and a throw-away media root."""

import os
import tempfile

# A var folder of its own: a demo's var/ (its keys file, its record of a running bucket) never leaks in.
os.environ.setdefault("APP_VAR_DIR", tempfile.mkdtemp(prefix="test-var-"))
os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-secret-key")
os.environ.setdefault("SECURE_LINK_KEYS", "k1=" + "1" * 43 + ",k2=" + "2" * 43)
os.environ.setdefault("MEDIA_ROOT", tempfile.mkdtemp(prefix="test-media-"))

from app.settings import *  # noqa: E402,F401,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STATIC_ROOT = None  # WhiteNoise serves from the apps' static folders (finders)
