"""`embudo serve` as a real process: pages and static files over HTTP, a clean stop."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.embudo_processes import (
    embudo_environment,
    free_port,
    http_get,
    run_embudo,
    run_ok,
    start_embudo,
    stop,
    wait_until_serving,
)


def test_serve_answers_pages_and_static_files_then_stops_on_sigterm(tmp_path: Path) -> None:
    with embudo_environment(tmp_path, "serve") as env:
        run_ok(env, "migrate", "-v0")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log = tmp_path / "serve.log"
        server = start_embudo(env, "serve", "--port", str(port), "--workers", "1", log=log)
        try:
            wait_until_serving(f"{base}/login/", server, log)

            status, body, _headers = http_get(f"{base}/login/")
            assert status == 200
            assert b'name="password"' in body

            status, body, headers = http_get(f"{base}/static/admin/css/base.css")
            assert status == 200
            assert headers["Content-Type"].startswith("text/css")
            assert b"body" in body

            status, _body, _headers = http_get(f"{base}/static/no-such-file.css")
            assert status == 404
        finally:
            code = stop(server)
        assert code == 0, log.read_text()
        assert "gthread" in log.read_text()
        assert "GET /login/" not in log.read_text()  # no access log unless asked


def test_serve_logs_each_request_when_asked(tmp_path: Path) -> None:
    with embudo_environment(tmp_path, "accesslog") as env:
        run_ok(env, "migrate", "-v0")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log = tmp_path / "serve.log"
        server = start_embudo(
            env, "serve", "--port", str(port), "--workers", "1", "--access-log", log=log
        )
        try:
            wait_until_serving(f"{base}/login/", server, log)
            status, _body, _headers = http_get(f"{base}/login/?from=test")
            assert status == 200
        finally:
            code = stop(server)
        assert code == 0, log.read_text()
        assert '"GET /login/?from=test HTTP/1.1" 200' in log.read_text()


def test_serve_refuses_a_database_with_pending_migrations(tmp_path: Path) -> None:
    with embudo_environment(tmp_path, "unmigrated") as env:
        port = free_port()

        done = run_embudo(env, "serve", "--port", str(port), timeout=60)

        assert done.returncode != 0
        assert "migration" in done.stderr and "embudo migrate" in done.stderr
        with socket.socket() as probe:  # and nothing was left listening
            assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_serve_rejects_an_impossible_port(tmp_path: Path) -> None:
    with embudo_environment(tmp_path, "badport") as env:
        done = run_embudo(env, "serve", "--port", "70000", timeout=60)
        assert done.returncode != 0
        assert "70000 is not a TCP port" in done.stderr


def test_serve_refuses_a_port_another_server_listens_on(tmp_path: Path) -> None:
    with embudo_environment(tmp_path, "taken") as env, socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]

        done = run_embudo(env, "serve", "--port", str(port), timeout=60)

        assert done.returncode != 0
        assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
        assert "another server is using it" in done.stderr


def test_serve_names_an_address_it_cannot_listen_on(tmp_path: Path) -> None:
    # 192.0.2.1 is a documentation address: no interface of this machine has it.
    with embudo_environment(tmp_path, "badhost") as env:
        done = run_embudo(env, "serve", "--host", "192.0.2.1", timeout=60)
        assert done.returncode != 0
        assert "cannot listen on 192.0.2.1:8000" in done.stderr
        assert "Traceback" not in done.stderr


def test_serve_rejects_a_negative_max_requests(tmp_path: Path) -> None:
    with embudo_environment(tmp_path, "badmax") as env:
        done = run_embudo(env, "serve", "--max-requests", "-1", timeout=60)
        assert done.returncode != 0
        assert "--max-requests must be 0 (never) or more" in done.stderr
