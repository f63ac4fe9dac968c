"""Each app's API module imports on its own, first thing after ``django.setup()``, as a shell, a
script or a worker that needs one router would import it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
API_MODULES = sorted(
    ".".join(path.relative_to(ROOT).with_suffix("").parts)
    for path in (ROOT / "embudo").glob("**/api.py")
)


def test_every_app_router_is_found() -> None:
    assert {"embudo.api", "embudo.crm.api", "embudo.predictive.api"} <= set(API_MODULES)


@pytest.mark.parametrize("module", API_MODULES)
def test_an_api_module_imports_first_in_a_fresh_process(module: str) -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "embudo.settings"}
    imported = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); import {module}"],
        cwd=ROOT,  # this checkout's embudo, whatever is installed
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    assert imported.returncode == 0, imported.stderr
