"""The base of every error Embudo raises on purpose, and the per-field error of bad input.

An :class:`EmbudoError` carries a message meant for the person or program that caused it (a
command's output, an API answer, a form); any other exception is a bug.
"""

from __future__ import annotations


class EmbudoError(Exception):
    """An error Embudo raises on purpose; the message says what was wrong."""


class ValidationFailed(EmbudoError, ValueError):
    """What every action raises on bad input: messages per field, ready for a 422."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in errors.items()))

    @classmethod
    def one(cls, field: str, message: str) -> ValidationFailed:
        return cls({field: [message]})
