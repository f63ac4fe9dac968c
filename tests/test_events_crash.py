"""Acknowledged means stored: `kill -9` the real server in the middle of a load, restart it,
and every event it had answered 200 for is in the database.

On SQLite (WAL, synchronous=NORMAL) a committed transaction is in the WAL file before the answer
goes out; killing the process cannot take it back (only losing power could). On PostgreSQL the
commit is on disk before the answer.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.embudo_processes import (
    child_pids,
    embudo_environment,
    free_port,
    run_ok,
    start_embudo,
    stop,
    wait_until_serving,
)

pytestmark = pytest.mark.slow

SETUP = (
    "from embudo.accounts.actions import create_api_key; "
    "print(create_api_key('crash test', ['ingest']).secret)"
)
COUNT = (
    "from embudo.tracking.models import Event; "
    "open({path!r}, 'w').write("
    "'\\n'.join(e.hex for e in Event.objects.values_list('id', flat=True)))"
)


class Loader(threading.Thread):
    """Posts batches of new events over one keep-alive connection until told to stop or the
    server goes away; remembers the ids of every batch answered 200."""

    def __init__(self, port: int, key: str, batch: int = 200) -> None:
        super().__init__(daemon=True)
        self.port, self.key, self.batch = port, key, batch
        self.acknowledged: list[str] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        while not self.stopping.is_set():
            ids = [uuid.uuid4().hex for _ in range(self.batch)]
            body = json.dumps(
                {
                    "events": [
                        {"event_id": i, "type": "page_view", "visitor_id": f"crash-{i[:6]}"}
                        for i in ids
                    ]
                }
            )
            try:
                connection.request(
                    "POST",
                    "/api/v1/events",
                    body=body,
                    headers={
                        "Authorization": f"Bearer {self.key}",
                        "Content-Type": "application/json",
                    },
                )
                response = connection.getresponse()
                answer = response.read()
            except (OSError, http.client.HTTPException):
                # The server died mid-request: this batch was never acknowledged.
                return
            if response.status == 200 and json.loads(answer)["accepted"] == self.batch:
                self.acknowledged.extend(ids)


def test_kill_9_loses_no_acknowledged_event(tmp_path: Path) -> None:
    with embudo_environment(tmp_path, "crash") as env:
        run_ok(env, "migrate", "-v0")
        key = run_ok(env, "shell", "-c", SETUP).strip().splitlines()[-1]
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = tmp_path / "serve.log"
        server = start_embudo(
            env, "serve", "--port", str(port), "--workers", "2", "--threads", "2", log=log
        )
        wait_until_serving(f"{url}/t.js", server, log)

        loaders = [Loader(port, key) for _ in range(4)]
        for loader in loaders:
            loader.start()
        deadline = time.monotonic() + 60
        while sum(len(x.acknowledged) for x in loaders) < 4000 and time.monotonic() < deadline:
            time.sleep(0.05)
        # Mid-load: requests are in flight in every worker when the whole server dies at once.
        workers = child_pids(server.pid)
        for pid in [server.pid, *workers]:
            os.kill(pid, signal.SIGKILL)
        server.wait()
        for loader in loaders:
            loader.stopping.set()
            loader.join(timeout=15)
        acknowledged = {i for loader in loaders for i in loader.acknowledged}
        assert len(acknowledged) >= 4000, "the load never got going; see serve.log"

        restarted = start_embudo(env, "serve", "--port", str(port), log=tmp_path / "again.log")
        try:
            wait_until_serving(f"{url}/t.js", restarted, tmp_path / "again.log")
            after = Loader(port, key, batch=10)
            after.start()
            time.sleep(1.0)
            after.stopping.set()
            after.join(timeout=15)
            assert after.acknowledged, "the restarted server did not accept events"
        finally:
            stop(restarted)

        listing = tmp_path / "stored.txt"
        run_ok(env, "shell", "-c", COUNT.format(path=str(listing)))
        stored = set(listing.read_text().split())

    missing = acknowledged - stored
    assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged events were lost"
    assert set(after.acknowledged) <= stored
