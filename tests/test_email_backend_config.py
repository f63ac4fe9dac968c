"""EMBUDO_EMAIL_BACKEND: SMTP unless set; Django's own backends, django-anymail's services by
name, or a dotted path; anything else refused naming the variable."""

from __future__ import annotations

import pytest

from embudo import config


@pytest.mark.parametrize(
    ("value", "backend"),
    [
        ("", "django.core.mail.backends.smtp.EmailBackend"),
        ("console", "django.core.mail.backends.console.EmailBackend"),
        ("postmark", "anymail.backends.postmark.EmailBackend"),
        ("Amazon-SES", "anymail.backends.amazon_ses.EmailBackend"),
        ("anymail:mailgun", "anymail.backends.mailgun.EmailBackend"),
        ("myco.mail.Backend", "myco.mail.Backend"),
    ],
)
def test_the_email_backend_is_read_from_the_environment(monkeypatch, value, backend):
    monkeypatch.setenv("EMBUDO_EMAIL_BACKEND", value)
    assert config.load().email_backend == backend


def test_an_unknown_email_backend_is_refused_naming_the_variable(monkeypatch):
    monkeypatch.setenv("EMBUDO_EMAIL_BACKEND", "pigeon post")
    with pytest.raises(config.ConfigError, match="EMBUDO_EMAIL_BACKEND='pigeon post'"):
        config.load()
