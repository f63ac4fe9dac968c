"""Django settings for Embudo. Everything configurable comes from :mod:`embudo.config`."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import dj_database_url
from django.utils.translation import gettext_lazy as _

from embudo import config

CONFIG = config.load()

BASE_DIR = Path(__file__).resolve().parent
# django-ninja's own folder, found without importing it: /api/v1/docs serves Swagger UI from its
# templates and static files (never a CDN), and ninja is not an installed app because importing
# it costs every `embudo` command half a second (see embudo.api.OfflineSwagger).
NINJA_DIR = Path(importlib.util.find_spec("ninja").origin or "").parent  # type: ignore[union-attr]
DATA_DIR = CONFIG.data_dir

SECRET_KEY = CONFIG.secret_key
DEBUG = CONFIG.debug
ALLOWED_HOSTS = CONFIG.allowed_hosts

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_tasks",
    "django_tasks_db",
    "embudo.accounts",
    "embudo.crm",
    "embudo.web",
    "embudo.deals",
    "embudo.tracking",
    "embudo.segments",
    "embudo.scoring",
    "embudo.predictive",
    "embudo.handoff",
    "embudo.analytics",
    "embudo.automation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # POST /api/v1/events with an ingest key skips the layers below (none serves a Bearer key).
    "embudo.tracking.shortcut.EventsShortcut",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "embudo.urls"
WSGI_APPLICATION = "embudo.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [NINJA_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "embudo.web.context.navigation",
            ],
        },
    },
]

if CONFIG.database_url:
    DATABASES = {"default": dj_database_url.parse(CONFIG.database_url, conn_max_age=60)}
    if CONFIG.uses_postgres:
        # Separate runs on one server (several checkouts, say) can each name their own.
        DATABASES["default"]["TEST"] = {
            "NAME": os.environ.get("EMBUDO_TEST_DATABASE_NAME") or "test_embudo"
        }
else:
    CONFIG.data_dir.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(CONFIG.data_dir / "embudo.sqlite3"),
        }
    }

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers and the writer work at once; IMMEDIATE takes the write lock at BEGIN,
    # so two writers queue on busy_timeout instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "init_command": (
            "PRAGMA journal_mode=WAL;"
            "PRAGMA synchronous=NORMAL;"
            "PRAGMA foreign_keys=ON;"
            "PRAGMA cache_size=-64000;"
            "PRAGMA temp_store=MEMORY;"
        ),
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    # Keep connections across requests: closing the last connection to a WAL database
    # checkpoints and deletes the WAL, and the next commit re-creates and syncs it: about 30 ms
    # per request on this kind of machine (measured with bench/ingest.py).
    DATABASES["default"]["CONN_MAX_AGE"] = 600

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TASKS: dict[str, dict[str, object]] = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
if CONFIG.redis_url:
    INSTALLED_APPS.append("django_rq")
    TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}
    RQ_QUEUES = {"default": {"URL": CONFIG.redis_url}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "web:home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("es", _("Spanish"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = CONFIG.time_zone
USE_TZ = True

STATIC_URL = "static/"
# Static files are served by the app itself straight from the installed packages (Plotly's JS
# comes from its wheel), so nothing has to be collected or fetched before `embudo serve`;
# hence no STATIC_ROOT.
STATICFILES_DIRS = [NINJA_DIR / "static"]
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

EMAIL_HOST = CONFIG.email_host
EMAIL_PORT = CONFIG.email_port
DEFAULT_FROM_EMAIL = CONFIG.email_from
EMAIL_BACKEND = CONFIG.email_backend

EMBUDO_MAX_IMPORT_BYTES = CONFIG.max_upload_mb * 1024 * 1024
EMBUDO_PUBLIC_URL = CONFIG.public_url
EMBUDO_BOUNCE_DOMAIN = CONFIG.bounce_domain
EMBUDO_SOFT_BOUNCE_LIMIT = CONFIG.soft_bounce_limit
EMBUDO_MAIL_IN_HOST = CONFIG.mail_in_host
EMBUDO_MAIL_IN_PORT = CONFIG.mail_in_port
# A provider's bounce and complaint webhooks (django-anymail), served under /anymail/ when set.
ANYMAIL = {"WEBHOOK_SECRET": CONFIG.anymail_webhook_secret}
EMBUDO_EMAIL_RATE_PER_DOMAIN = CONFIG.email_rate_per_domain

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {"embudo": {"level": "INFO"}},
}
