"""`embudo worker`: run background tasks from the configured queue (database or Redis)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_tasks import default_task_backend

DATABASE_BACKEND = "django_tasks_db.DatabaseBackend"
REDIS_BACKEND = "django_tasks_rq.RQBackend"


class Command(BaseCommand):
    help = (
        "Run background tasks (owner notifications, workflow steps, SLA timers…). Uses the "
        "database queue by default, or Redis when EMBUDO_REDIS_URL is set. Stops cleanly on "
        "Ctrl-C or SIGTERM after the task in hand."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch",
            action="store_true",
            help="Run every task that is due, then exit (for cron jobs, CI and tests).",
        )
        parser.add_argument(
            "--max-tasks",
            type=int,
            default=None,
            help="Exit after running this many tasks (a supervisor then starts a fresh worker).",
        )
        parser.add_argument(
            "--interval",
            type=float,
            default=1.0,
            help="Database queue: seconds to wait between polls when idle (default 1).",
        )
        parser.add_argument(
            "--queue",
            action="append",
            dest="queues",
            default=None,
            help="Work only this queue (repeatable); by default every configured queue.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        backend_path = settings.TASKS["default"]["BACKEND"]
        configured = sorted(default_task_backend.queues)
        queues = options["queues"] or configured
        unknown = [name for name in queues if name not in configured]
        if unknown:
            raise CommandError(
                f"no task queue named {', '.join(unknown)}; the queues are {', '.join(configured)}"
            )
        max_tasks = options["max_tasks"]
        if max_tasks is not None and max_tasks < 1:
            raise CommandError("--max-tasks must be at least 1")
        verbosity = options["verbosity"]
        # Claims left by a worker that died are released and its sends queued again before
        # this worker takes any task (a dead worker's task is never run twice by the queue).
        from embudo.automation.sending import recover

        recover(resume=True)
        if backend_path == DATABASE_BACKEND:
            self.stdout.write(f"Embudo worker: database queue, queues {', '.join(queues)}")
            call_command(
                "db_worker",
                queue_name=",".join(queues),
                batch=options["batch"],
                max_tasks=max_tasks,
                interval=options["interval"],
                # Code reloading restarts mid-task; a worker runs deployed code only.
                reload=False,
                verbosity=verbosity,
                stdout=self.stdout._out,
                stderr=self.stderr._out,
            )
        elif backend_path == REDIS_BACKEND:
            self.stdout.write(f"Embudo worker: Redis queue, queues {', '.join(queues)}")
            call_command(
                "rqworker",
                *queues,
                job_class="django_tasks_rq.Job",
                burst=options["batch"],
                max_jobs=max_tasks,
                # Delayed tasks (workflow waits, SLA deadlines) need RQ's scheduler to come due.
                with_scheduler=True,
                verbosity=verbosity,
                stdout=self.stdout._out,
                stderr=self.stderr._out,
            )
        else:
            raise CommandError(
                f"the task backend {backend_path} has no worker to run; "
                "Embudo runs the database queue or, with EMBUDO_REDIS_URL, Redis"
            )
