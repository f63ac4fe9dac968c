"""Embudo's configuration, read once from ``EMBUDO_*`` environment variables.

Every setting has a working default, so Embudo boots with nothing set: SQLite in ``./embudo-data/``.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from embudo.errors import EmbudoError


class ConfigError(EmbudoError, ValueError):
    """An ``EMBUDO_*`` variable holds a value Embudo cannot use."""


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean; use true or false")


def _int(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r} must be at least {minimum}")
    return value


def _list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


@dataclass(frozen=True)
class Config:
    data_dir: Path
    database_url: str | None
    redis_url: str | None
    secret_key: str
    debug: bool
    allowed_hosts: list[str]
    time_zone: str
    email_host: str
    email_port: int
    email_from: str
    # The Django e-mail backend messages go through (SMTP unless set): see _email_backend.
    email_backend: str
    max_upload_mb: int
    # Where contacts reach Embudo's public links (open pixel, clicks, unsubscribe), with no
    # trailing slash; messages carry absolute links built on it.
    public_url: str
    # The domain of the return path (VERP) bounces come back to: bounces+<delivery>-<sig>@domain.
    bounce_domain: str
    # Soft bounces in a row after which an address is suppressed.
    soft_bounce_limit: int
    # Messages per minute a send may hand to one recipient domain (across every worker).
    email_rate_per_domain: int
    # Where `embudo mail-in` listens for bounce messages (SMTP).
    mail_in_host: str = "127.0.0.1"
    mail_in_port: int = 2525
    # The shared secret ("user:password") a provider's webhooks authenticate with through
    # django-anymail; empty: no provider webhook is served.
    anymail_webhook_secret: str = ""

    @property
    def uses_postgres(self) -> bool:
        scheme = (self.database_url or "").split(":", 1)[0]
        return scheme in {"postgres", "postgresql", "pgsql"}


def _secret_key(data_dir: Path) -> str:
    """The secret from EMBUDO_SECRET_KEY, or one generated once and kept in the data folder."""
    from_env = os.environ.get("EMBUDO_SECRET_KEY")
    if from_env:
        return from_env
    key_file = data_dir / "secret_key"
    try:
        return key_file.read_text().strip()
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    key_file.write_text(key)
    key_file.chmod(0o600)
    return key


_DJANGO_BACKENDS = {
    "smtp": "django.core.mail.backends.smtp.EmailBackend",
    "console": "django.core.mail.backends.console.EmailBackend",
    "locmem": "django.core.mail.backends.locmem.EmailBackend",
    "dummy": "django.core.mail.backends.dummy.EmailBackend",
}
_ANYMAIL_ESPS = (
    "amazon_ses",
    "brevo",
    "mailersend",
    "mailgun",
    "mailjet",
    "mailtrap",
    "mandrill",
    "postal",
    "postmark",
    "resend",
    "scaleway",
    "sendgrid",
    "sparkpost",
    "unisender_go",
)


def _email_backend() -> str:
    """EMBUDO_EMAIL_BACKEND: ``smtp`` (the default), ``console``, ``locmem`` or ``dummy``; an
    e-mail service's name as django-anymail knows it (``postmark``, ``amazon_ses``, ``mailgun``,
    ``sendgrid``…, its keys in anymail's own ``ANYMAIL_*`` variables); or a backend's dotted
    path."""
    raw = (os.environ.get("EMBUDO_EMAIL_BACKEND") or "smtp").strip()
    name = raw.lower().removeprefix("anymail:").replace("-", "_")
    if name in _DJANGO_BACKENDS:
        return _DJANGO_BACKENDS[name]
    if name in _ANYMAIL_ESPS:
        return f"anymail.backends.{name}.EmailBackend"
    if "." in raw and all(part.isidentifier() for part in raw.split(".")):
        return raw
    raise ConfigError(
        f"EMBUDO_EMAIL_BACKEND={raw!r} is not an e-mail backend; use smtp, console, locmem, "
        f"dummy, an e-mail service ({', '.join(_ANYMAIL_ESPS)}) or a dotted path"
    )


def _webhook_secret() -> str:
    raw = os.environ.get("EMBUDO_ANYMAIL_WEBHOOK_SECRET") or ""
    if raw and ":" not in raw:
        raise ConfigError(
            "EMBUDO_ANYMAIL_WEBHOOK_SECRET must be written user:password (the basic "
            "authentication the provider's webhook sends)"
        )
    return raw


def load() -> Config:
    data_dir = Path(os.environ.get("EMBUDO_DATA_DIR") or "embudo-data").resolve()
    database_url = os.environ.get("EMBUDO_DATABASE_URL") or None
    if database_url and "://" not in database_url:
        raise ConfigError(
            f"EMBUDO_DATABASE_URL={database_url!r} is not a URL; "
            "use postgres://user@host:5432/name or sqlite:///path/to/file.sqlite3"
        )
    return Config(
        data_dir=data_dir,
        database_url=database_url,
        redis_url=os.environ.get("EMBUDO_REDIS_URL") or None,
        secret_key=_secret_key(data_dir),
        debug=_bool("EMBUDO_DEBUG", False),
        allowed_hosts=_list("EMBUDO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"]),
        time_zone=os.environ.get("EMBUDO_TIME_ZONE") or "UTC",
        email_host=os.environ.get("EMBUDO_EMAIL_HOST") or "127.0.0.1",
        email_port=_int("EMBUDO_EMAIL_PORT", 25, minimum=1),
        email_from=os.environ.get("EMBUDO_EMAIL_FROM") or "embudo@localhost",
        email_backend=_email_backend(),
        max_upload_mb=_int("EMBUDO_MAX_UPLOAD_MB", 100, minimum=1),
        public_url=(os.environ.get("EMBUDO_PUBLIC_URL") or "http://127.0.0.1:8000").rstrip("/"),
        bounce_domain=os.environ.get("EMBUDO_BOUNCE_DOMAIN") or "localhost",
        soft_bounce_limit=_int("EMBUDO_SOFT_BOUNCE_LIMIT", 3, minimum=1),
        mail_in_host=os.environ.get("EMBUDO_MAIL_IN_HOST") or "127.0.0.1",
        mail_in_port=_int("EMBUDO_MAIL_IN_PORT", 2525, minimum=1),
        anymail_webhook_secret=_webhook_secret(),
        email_rate_per_domain=_int("EMBUDO_EMAIL_RATE_PER_DOMAIN", 6000, minimum=1),
    )
