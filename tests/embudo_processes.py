"""Running Embudo as a real process in tests: a throwaway database, a free port, a mail server.

The database a subprocess uses is its own: a fresh SQLite file in a temporary folder or, when
the suite runs on PostgreSQL, a fresh database on the same server, dropped afterwards.
"""

from __future__ import annotations

import email
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from aiosmtpd.controller import Controller

REDIS_URL = "redis://127.0.0.1:6379"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class MailSink:
    """A real SMTP server on 127.0.0.1 that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self._arrived = threading.Condition()
        self.port = free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._arrived:
            self.messages.append(email.message_from_bytes(envelope.content))
            self._arrived.notify_all()
        return "250 Message accepted for delivery"

    def wait_for(self, count: int, timeout: float = 20) -> list[Message]:
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.messages) >= count, timeout=timeout)
            return list(self.messages)

    def __enter__(self) -> MailSink:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()


def _postgres_url() -> str | None:
    url = os.environ.get("EMBUDO_DATABASE_URL", "")
    return url if url.split(":", 1)[0] in {"postgres", "postgresql", "pgsql"} else None


@contextmanager
def embudo_environment(tmp_path: Path, label: str, **extra: str) -> Iterator[dict[str, str]]:
    """Environment variables for an `embudo` subprocess with a database of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBUDO_")}
    env.update(
        EMBUDO_DATA_DIR=str(tmp_path / f"data-{label}"),
        EMBUDO_SECRET_KEY="embudo-test-secret-key-for-subprocesses-only",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    server = _postgres_url()
    if server is None:
        yield env
        return
    import psycopg

    base = os.environ.get("EMBUDO_TEST_DATABASE_NAME") or "test_embudo"
    name = f"{base}_{label}"
    parts = urlsplit(server)
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    env["EMBUDO_DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{name}"))
    try:
        yield env
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def embudo_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "embudo", *args]


def run_embudo(
    env: dict[str, str], *args: str, stdin: str | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        embudo_command(*args),
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_ok(env: dict[str, str], *args: str, **kwargs: Any) -> str:
    """Run `embudo ARGS`; fail the test with its output unless it exits 0. Returns stdout."""
    done = run_embudo(env, *args, **kwargs)
    assert done.returncode == 0, (
        f"embudo {' '.join(args)} exited {done.returncode}\n"
        f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    )
    return done.stdout


def start_embudo(env: dict[str, str], *args: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(embudo_command(*args), env=env, stdout=out, stderr=out)


def http_get(url: str, timeout: float = 10) -> tuple[int, bytes, dict[str, str]]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def wait_until_serving(
    url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 120
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"the process exited with {process.returncode} before serving:\n"
                + log.read_text(errors="replace")
            )
        try:
            http_get(url, timeout=2)
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            time.sleep(0.3)
    raise AssertionError(f"nothing answered at {url} in {timeout} s:\n" + log.read_text())


def child_pids(pid: int) -> list[int]:
    """Direct children of a process, from /proc."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        children = (task / "children").read_text().split()
        found.extend(int(child) for child in children)
    return found


def is_running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def stop(process: subprocess.Popen[bytes], timeout: float = 40) -> int:
    """SIGTERM, then wait; a process that ignores it is killed and the test told so."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError(f"the process did not stop within {timeout} s of SIGTERM") from None
