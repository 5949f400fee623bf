"""The demo project's Django settings, read from the environment with working defaults.

It uses the ``signing.django`` app as any project would (INSTALLED_APPS, STORAGES, SECURE_LINK);
every variable is documented in docs/configuration.md.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

import signing
from app.demo_record import read_record, running_demo, running_demo_bucket
from signing.django.conf import settings_from_environment
from signing.keys import KEYS_FILE_NAME

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("APP_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else parse_bool(value)


def env_int(name: str, default: int) -> int:
    return int(_env_number(name, default, int, "a whole number"))


def _env_number(name: str, default: float, parse: type[int] | type[float], what: str) -> float:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return parse(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not {what}") from None


def parse_bool(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def sqlite_database(path: Path | str) -> dict[str, object]:
    """The embedded default, safe for the demo's few concurrent workers.

    WAL lets readers work while one writer writes; transactions take the write lock when
    they begin (IMMEDIATE), so two writers queue for up to 20 s instead of one failing with
    "database is locked" halfway through. One writer at a time is still SQLite's limit:
    use PostgreSQL (DATABASE_URL) for production.
    """
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": path,
        "OPTIONS": {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }


def database_from_url(url: str) -> dict[str, object]:
    """``postgres://user:password@host:5432/name`` or ``sqlite:///path`` to a DATABASES entry."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return sqlite_database(unquote(parts.path) or ":memory:")
    if parts.scheme in ("postgres", "postgresql"):
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path.lstrip("/")),
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
            "CONN_MAX_AGE": 60,
            # A connection kept from before a database restart is tested before use, not failed on:
            # the download counter answers again as soon as the database is back.
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": {"connect_timeout": 3},
        }
    raise ImproperlyConfigured(f"DATABASE_URL scheme {parts.scheme!r} is not supported: use postgres:// or sqlite://")


def secret_key_from_environment() -> str:
    """$DJANGO_SECRET_KEY, else the file $DJANGO_SECRET_KEY_FILE (default var/django_secret_key)."""
    path = Path(os.environ.get("DJANGO_SECRET_KEY_FILE", VAR_DIR / "django_secret_key"))
    if os.environ.get("DJANGO_SECRET_KEY"):
        return os.environ["DJANGO_SECRET_KEY"]
    return path.read_text(encoding="utf-8").strip() if path.exists() else ""


DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = secret_key_from_environment() or ("insecure-local-development-key" if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "set DJANGO_SECRET_KEY or DJANGO_SECRET_KEY_FILE (or DJANGO_DEBUG=1 for local development)"
    )
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver").split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "signing.django",
    "app.downloads",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "app.urls"
WSGI_APPLICATION = "app.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "app" / "templates"],  # overrides of third-party templates
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": database_from_url(os.environ["DATABASE_URL"])
    if os.environ.get("DATABASE_URL")
    else sqlite_database(VAR_DIR / "db.sqlite3")
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))
# Serve app static files (the API docs' local assets) even before collectstatic has run.
WHITENOISE_USE_FINDERS = True
MEDIA_URL = os.environ.get("MEDIA_URL", "/media/")
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
# FileField.url is a signed nginx link everywhere (templates, admin, DRF file fields). The files
# are on disk under MEDIA_ROOT, or with STORAGE_URL=s3://BUCKET?endpoint=...&credentials=FILE in
# a bucket (`STORAGE=s3 make run` sets it; docs/deployment.md#files-in-a-bucket).
RUNNING_DEMO = read_record(VAR_DIR)  # make run's record of itself (var/demo.json), read once
STORAGE_URL = os.environ.get("STORAGE_URL", "").strip() or running_demo_bucket(RUNNING_DEMO)
STORAGES = {
    "default": {"BACKEND": "signing.django.s3.SignedS3Storage", "OPTIONS": {"bucket": STORAGE_URL}} if STORAGE_URL
    else {"BACKEND": "signing.django.storage.SignedURLStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "app.downloads.pagination.ImagePagination",
    "PAGE_SIZE": env_int("API_PAGE_SIZE", 20),
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Signed downloads API",
    "DESCRIPTION": "Images with expiring download links that nginx verifies by itself.",
    "VERSION": signing.__version__,
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

LOGIN_URL = "login"  # the image pages (app/downloads/views.py) ask for a login: any user, not only staff

# Signed links: signing.django reads this (its defaults live in signing/django/conf.py). The
# keys file's folder also holds the per-link state and the fleet token; the SECURE_LINK_*
# variables override any entry; a running demo's record names the verifiers for the commands.
SECURE_LINK = {
    **running_demo(RUNNING_DEMO),
    "KEYS_FILE": VAR_DIR / KEYS_FILE_NAME,
    "CHECK_PROBES": "app.downloads.probes.compatibility_view_probes",  # check_secure_link probes the image view too
    **settings_from_environment(),
}
IMAGE_MAX_UPLOAD_BYTES = env_int("IMAGE_MAX_UPLOAD_BYTES", 10 * 1024 * 1024)
# Width x height: a few bytes of PNG can declare a picture that needs gigabytes to decode.
IMAGE_MAX_PIXELS = env_int("IMAGE_MAX_PIXELS", 40_000_000)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "WARNING")},
}
