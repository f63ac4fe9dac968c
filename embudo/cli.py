"""The `embudo` command: Django's management entry point with Embudo's own commands."""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "embudo.settings")
    from django.core.management import execute_from_command_line

    from embudo.config import ConfigError

    try:
        execute_from_command_line(["embudo", *(sys.argv[1:] if argv is None else argv)])
    except ConfigError as error:
        sys.stderr.write(f"embudo: configuration error: {error}\n")
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
