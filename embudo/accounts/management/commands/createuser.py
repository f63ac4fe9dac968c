"""`embudo createuser USERNAME --role ROLE`: add a person who logs in to Embudo."""

from __future__ import annotations

import getpass
import secrets
import sys
from typing import Any

from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser
from django.core.validators import validate_email

from embudo.accounts.actions import AccountError, create_user
from embudo.accounts.roles import ROLES
from embudo.commands import DataCommand


class Command(DataCommand):
    help = (
        "Create a user with a role (admin, marketing, sales, sales_manager). The password comes "
        "from --password, --password-stdin or a prompt; with none of them and no terminal, one "
        "is generated and printed once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=ROLES, help="The user's role.")
        parser.add_argument("--email", default="", help="Where Embudo sends their notifications.")
        parser.add_argument("--first-name", default="")
        parser.add_argument("--last-name", default="")
        given = parser.add_mutually_exclusive_group()
        given.add_argument(
            "--password", help="The password (visible in shell history: prefer the prompt)."
        )
        given.add_argument(
            "--password-stdin",
            action="store_true",
            help="Read the password from the first line of standard input.",
        )
        given.add_argument(
            "--generate-password",
            action="store_true",
            help="Generate a strong password and print it once.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        username = options["username"].strip()
        if not username:
            raise CommandError("the username is empty")
        email = options["email"].strip().lower()
        if email:
            try:
                validate_email(email)
            except ValidationError:
                raise CommandError(f"{email!r} is not a valid email address") from None
        user_model = get_user_model()
        # Asked before the password prompt, so nobody types a password for nothing.
        if user_model.objects.filter(username__iexact=username).exists():
            raise CommandError(f"a user named {username!r} already exists")
        candidate = user_model(
            username=username,
            email=email,
            first_name=options["first_name"],
            last_name=options["last_name"],
        )
        generated = False
        if options["password"] is not None:
            password = options["password"]
        elif options["password_stdin"]:
            password = sys.stdin.readline().rstrip("\r\n")
        elif options["generate_password"] or not sys.stdin.isatty():
            password, generated = secrets.token_urlsafe(15), True
        else:
            password = self._prompt(candidate)
        if not generated:
            self._validate(password, candidate)
        try:
            user = create_user(
                username,
                role=options["role"],
                password=password,
                email=email,
                first_name=options["first_name"],
                last_name=options["last_name"],
            )
        except AccountError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"Created {options['role']} user {user.get_username()!r}.")
        if generated:
            self.stdout.write(f"Password (shown once): {password}")

    def _prompt(self, candidate: Any) -> str:
        for _attempt in range(3):
            password = getpass.getpass("Password: ")
            if password != getpass.getpass("Password (again): "):
                self.stderr.write("The passwords differ; try again.")
                continue
            try:
                password_validation.validate_password(password, candidate)
            except ValidationError as error:
                self.stderr.write(" ".join(error.messages))
                continue
            return password
        raise CommandError("no acceptable password after three tries; nothing was created")

    def _validate(self, password: str, candidate: Any) -> None:
        if not password:
            raise CommandError("the password is empty; nothing was created")
        try:
            password_validation.validate_password(password, candidate)
        except ValidationError as error:
            raise CommandError(
                "the password is not acceptable: " + " ".join(error.messages)
            ) from None
