"""Who may open a page: every page needs a logged-in user with a role and a model permission."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _

from embudo.accounts.roles import role_of

View = Callable[..., HttpResponse]


def acting_user(request: HttpRequest) -> User:
    """The user a page acts as: pages are behind a login, so an anonymous request never gets
    this far; if one does, it is refused rather than recorded as nobody."""
    user = request.user
    if not isinstance(user, User):
        raise PermissionDenied(_("Log in to do this."))
    return user


def role_required(perm: str) -> Callable[[View], View]:
    """Logged in, holding a role, and holding the Django model permission ``perm``."""

    def decorator(view: View) -> View:
        @wraps(view)
        @login_required
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if role_of(request.user) is None or not request.user.has_perm(perm):
                raise PermissionDenied(_("Your role does not allow this."))
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
