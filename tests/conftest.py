from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests.factories import PASSWORD, make_user


@pytest.fixture
def admin_user(db: Any) -> Any:
    return make_user("admin")


@pytest.fixture
def logged_in(client: Client) -> Any:
    """Log a fresh user of the given role into the test client: ``logged_in("sales")``."""

    def login(role: str = "admin") -> Any:
        user = make_user(role)
        assert client.login(username=user.username, password=PASSWORD)
        return user

    return login
