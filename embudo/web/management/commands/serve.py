"""`embudo serve`: the production web server (gunicorn, threaded workers) with static files."""

from __future__ import annotations

import errno
import socket
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.db.utils import DatabaseError
from gunicorn.app.base import BaseApplication


def pending_migrations(alias: str = DEFAULT_DB_ALIAS) -> list[str]:
    """Names of the migrations the database still lacks, as ``app.migration``."""
    connection = connections[alias]
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{migration.app_label}.{migration.name}" for migration, _backwards in plan]


def bind_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def refuse_a_taken_port(host: str, port: int) -> None:
    """Raise CommandError when the address cannot be listened on: something already listens
    there, the host is unknown, the port needs privileges.

    On Linux the workers bind with SO_REUSEPORT, which would let a second `embudo serve` on the
    same port share it silently (each getting part of the connections) instead of failing."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is free
        try:
            probe.bind((host.strip("[]"), port))
        except OSError as error:
            hint = " (another server is using it)" if error.errno == errno.EADDRINUSE else ""
            raise CommandError(
                f"cannot listen on {bind_address(host, port)}: {error.strerror or error}{hint}"
            ) from None


# Requests a worker serves before it is replaced by a fresh one (see server_options).
MAX_REQUESTS = 100_000


class EmbudoServer(BaseApplication):  # type: ignore[misc]  # gunicorn ships no type hints
    """Gunicorn run from Python, so `embudo serve` needs no config file and no second CLI."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__(prog="embudo serve")

    def load_config(self) -> None:
        for name, value in self.options.items():
            self.cfg.set(name, value)

    def load(self) -> Any:
        from django.core.wsgi import get_wsgi_application

        return get_wsgi_application()


def server_options(
    host: str,
    port: int,
    workers: int,
    threads: int,
    *,
    access_log: bool = False,
    max_requests: int = MAX_REQUESTS,
) -> dict[str, Any]:
    return {
        "bind": [bind_address(host, port)],
        "workers": workers,
        # Threaded workers: a slow client or a long report holds a thread, not a whole process.
        "worker_class": "gthread",
        # Each worker listens on a socket of its own (SO_REUSEPORT) and the kernel spreads new
        # connections over them. On one shared socket the worker that happens to be awake
        # accepts a burst of connections alone, and keep-alive clients then stay on that one
        # process: measured with 6 or 16 connections, half the runs had every connection on
        # one worker and served 1,250 single events/s instead of 2,000. Linux only: elsewhere
        # (BSD, macOS) SO_REUSEPORT does not spread connections over the sockets.
        "reuse_port": sys.platform.startswith("linux"),
        "threads": threads,
        "timeout": 120,
        "graceful_timeout": 20,
        # Loading Django once in the master surfaces import and settings errors before forking.
        "preload_app": True,
        # Recycle workers now and then so a slow leak cannot grow without bound; rarely, as a
        # new worker starts cold (connections, caches) and the events API sees thousands of
        # requests a second. Jitter keeps the workers from restarting together. 0: never.
        "max_requests": max_requests,
        "max_requests_jitter": max_requests // 10,
        # A line per request (about 3% of the events API's CPU, measured with the log going to
        # /dev/null; more to a terminal or a file) is off unless asked.
        "accesslog": "-" if access_log else None,
        "errorlog": "-",
        "loglevel": "info",
        "proc_name": "embudo",
        # Gunicorn's control socket lives in one fixed path per user; several servers on one
        # machine (a demo beside a production instance, the test suite) would fight over it.
        "control_socket_disable": True,
    }


class Command(BaseCommand):
    help = (
        "Serve Embudo over HTTP with gunicorn (threaded workers), static files included. "
        "Refuses to start while database migrations are pending: run `embudo migrate` first."
    )
    requires_system_checks = []  # checked below, with the deployment checks shown as warnings

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="Address to listen on.")
        parser.add_argument("--port", type=int, default=8000, help="Port to listen on.")
        parser.add_argument(
            "--workers", type=int, default=2, help="Worker processes (default 2; ~1 per core)."
        )
        parser.add_argument(
            "--threads", type=int, default=4, help="Threads per worker process (default 4)."
        )
        parser.add_argument(
            "--access-log",
            action="store_true",
            help="Log every request on standard output (off by default: it slows busy servers).",
        )
        parser.add_argument(
            "--max-requests",
            type=int,
            default=MAX_REQUESTS,
            help=f"Replace a worker after this many requests (default {MAX_REQUESTS:,}; 0: never).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        host, port = options["host"], options["port"]
        if not 0 < port < 65536:
            raise CommandError(f"--port {port} is not a TCP port (1-65535)")
        if options["workers"] < 1 or options["threads"] < 1:
            raise CommandError("--workers and --threads must each be at least 1")
        if options["max_requests"] < 0:
            raise CommandError("--max-requests must be 0 (never) or more")
        refuse_a_taken_port(host, port)
        self.check(display_num_errors=False)
        try:
            pending = pending_migrations()
        except DatabaseError as error:
            raise CommandError(f"cannot reach the database: {error}") from None
        if pending:
            shown = ", ".join(pending[:5]) + (" …" if len(pending) > 5 else "")
            raise CommandError(
                f"the database is missing {len(pending)} migration(s) ({shown}); "
                "run `embudo migrate` first, then `embudo serve` again"
            )
        # Forked workers must not share the master's database connection.
        connections.close_all()
        self.stdout.write(f"Embudo serving on http://{bind_address(host, port)}/ (Ctrl-C to stop)")
        self.stdout.flush()
        server_options_ = server_options(
            host,
            port,
            options["workers"],
            options["threads"],
            access_log=options["access_log"],
            max_requests=options["max_requests"],
        )
        EmbudoServer(server_options_).run()
