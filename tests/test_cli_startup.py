"""Starting `embudo` stays light: the heavy libraries (numpy, scikit-learn, plotly, django-ninja
and its pydantic) load where they are used, not when Django starts, and the data commands skip
the system checks that would load every API router."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("numpy", "scipy", "sklearn", "plotly", "ninja", "pydantic")


def imported_after(code: str, tmp_path: Path) -> list[str]:
    """The heavy libraries a fresh process has imported after running ``code`` (after
    ``django.setup()``), on a throwaway SQLite database."""
    probe = (
        "import os, sys\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'embudo.settings')\n"
        "import django\n"
        "django.setup()\n"
        f"{code}\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    env = {**os.environ, "EMBUDO_DATA_DIR": str(tmp_path)}
    env.pop("EMBUDO_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return [name for name in done.stdout.strip().split(",") if name]


def test_starting_django_imports_no_heavy_library(tmp_path: Path) -> None:
    assert imported_after("", tmp_path) == []


def test_listing_the_commands_imports_no_heavy_library(tmp_path: Path) -> None:
    code = (
        "import io, contextlib\n"
        "from django.core.management import ManagementUtility\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    ManagementUtility(['embudo', '--help']).execute()"
    )
    assert imported_after(code, tmp_path) == []


def test_creating_a_user_from_the_command_line_imports_no_heavy_library(tmp_path: Path) -> None:
    imported_after(
        "from django.core.management import call_command\ncall_command('migrate')", tmp_path
    )
    code = (
        "import io, contextlib\n"
        "from django.core.management import ManagementUtility\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    ManagementUtility(['embudo', 'createuser', 'ana', '--role', 'sales',\n"
        "                       '--password', 'funnel-for-everyone-42']).execute()\n"
        "from django.contrib.auth import get_user_model\n"
        "assert get_user_model().objects.filter(username='ana').exists()"
    )
    assert imported_after(code, tmp_path) == []
