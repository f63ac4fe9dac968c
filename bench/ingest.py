"""HTTP ingest speed of POST /api/v1/events on the embedded default (SQLite), against the raw
speed of inserting the same rows straight into SQLite from one Python process.

It migrates a throwaway data folder, creates contacts and an ingest key through Embudo's own code,
starts the real server (`embudo serve`: gunicorn, threaded workers), drives it with `wrk`
(Debian package `wrk`; a Lua script builds unique events per request, stamped to the second
with the moment the request is built, as a live site's are) and prints events/s,
requests/s, latency and the server's peak memory, then the raw-SQLite baseline and the ratio.

    python3 bench/ingest.py                      # batches of 500, then single events, 15 s each
    python3 bench/ingest.py --seconds 5 --workers 3 --connections 6
    python3 bench/ingest.py --one-moment         # every event stamped with one moment
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import re
import resource
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONTACTS = 1000
# The raw baseline's clock: rows stamped with one second, like the events HTTP stores per second.
RAW_PER_SECOND = 20_000

SETUP = """
import django, sys
django.setup()
from embudo.accounts.actions import create_api_key, create_user
from embudo.crm.actions import create_contact
admin = create_user("bench-admin", role="admin", password="bench-password-123")
for n in range({contacts}):
    create_contact({{"email": f"person{{n}}@bench.test", "first_name": "Bench"}}, actor=admin)
print(create_api_key("bench", ["ingest"], created_by=admin).secret)
"""

LUA = r"""
local batch = {batch}
local contacts = {contacts}
local nonce = "{nonce}"
local one_moment = "{one_moment}"
local key = "{key}"
local counter = 0
local tid = 0
local threads = 0

function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

local occurred

local function one()
  counter = counter + 1
  local id = string.format("%s-%04x-4000-8000-%012x", nonce, tid, counter)
  local n = counter % contacts
  local who
  if counter % 2 == 0 then
    who = string.format('"email":"person%d@bench.test"', n)
  else
    who = string.format('"visitor_id":"v%d-%d"', tid, counter % 5000)
  end
  local url = string.format("https://acme.test/p/%d", counter % 300)
  if counter % 10 == 0 then
    url = url .. "?utm_source=newsletter&utm_medium=email&utm_campaign=spring-" .. (counter % 7)
  end
  return string.format(
    '{{"event_id":"%s","type":"page_view",%s,"url":"%s","occurred_at":"%s",'
    .. '"properties":{{"title":"Page %d","lang":"en"}}}}',
    id, who, url, occurred, counter % 300)
end

function request()
  -- Stamped when the request is built, to the second, as a live site's events are.
  occurred = one_moment ~= "" and one_moment or os.date("!%Y-%m-%dT%H:%M:%SZ")
  local body
  if batch == 1 then
    body = one()
  else
    local parts = {{}}
    for i = 1, batch do parts[i] = one() end
    body = '{{"events":[' .. table.concat(parts, ",") .. ']}}'
  end
  return wrk.format("POST", "/api/v1/events", {{
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. key,
  }}, body)
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"the server did not start on port {port}")


def peak_rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            continue
        match = re.search(r"VmHWM:\s+(\d+) kB", status)
        if match:
            total += int(match.group(1))
    return total / 1024


class ServerCpu(threading.Thread):
    """CPU time (user + system) the server uses while it runs: the master and its workers,
    sampled every 0.2 s, so a worker gunicorn recycles mid-run (`embudo serve --max-requests`)
    counts up to its last sample and its replacement from its start."""

    def __init__(self, master: int) -> None:
        super().__init__(daemon=True)
        self.master = master
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.stopping = threading.Event()
        self.sample(initial=True)

    def sample(self, initial: bool = False) -> None:
        ticks = os.sysconf("SC_CLK_TCK")
        for pid in [self.master, *children(self.master)]:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except FileNotFoundError:
                continue
            used = (int(fields[11]) + int(fields[12])) / ticks
            self.first.setdefault(pid, used if initial else 0.0)
            self.last[pid] = used

    def run(self) -> None:
        while not self.stopping.wait(0.2):
            self.sample()

    def stop(self) -> float:
        self.stopping.set()
        self.join()
        self.sample()
        return sum(self.last[pid] - self.first[pid] for pid in self.last)


def children(pid: int) -> list[int]:
    try:
        out = subprocess.run(
            ["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False
        ).stdout
    except FileNotFoundError:
        return []
    return [int(p) for p in out.split()]


def run_wrk(
    port: int,
    key: str,
    batch: int,
    seconds: int,
    connections: int,
    workdir: Path,
    one_moment: bool = False,
) -> dict[str, float]:
    script = workdir / f"events-{batch}.lua"
    script.write_text(
        LUA.format(
            batch=batch,
            contacts=CONTACTS,
            nonce=f"{random.getrandbits(32):08x}",
            one_moment=_one_moment() if one_moment else "",
            key=key,
        )
    )
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}",
    ]
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_before = usage.ru_utime + usage.ru_stime
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_cpu = usage.ru_utime + usage.ru_stime - wrk_before
    requests = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    p50 = re.search(r"50%\s+([\d.]+\w+)", out)
    p99 = re.search(r"99%\s+([\d.]+\w+)", out)
    return {
        "wrk_cpu": wrk_cpu,
        "requests_per_s": requests,
        "events_per_s": requests * batch,
        "non_2xx": float(bad.group(1)) if bad else 0.0,
        "socket_errors": errors.group(0) if errors else "",  # type: ignore[dict-item]
        "p50": p50.group(1) if p50 else "?",  # type: ignore[dict-item]
        "p99": p99.group(1) if p99 else "?",  # type: ignore[dict-item]
    }


def count_events(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM tracking_event").fetchone()[0])


def _one_moment() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def raw_baseline(db: Path, rows: int, batch: int, one_moment: bool = False) -> float:
    """Rows/s inserting the same kind of rows straight into the same schema, one process,
    one transaction per ``batch`` rows, with Embudo's SQLite settings (WAL, synchronous=NORMAL).
    Rows are stamped to the second as the HTTP runs stamp them, the clock moving on by one second
    every ``RAW_PER_SECOND`` rows (or all with one moment: ``one_moment``).
    """
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA cache_size=-64000")
    contact_ids = [r[0] for r in conn.execute("SELECT id FROM crm_contact")]
    clock = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    props = json.dumps({"title": "Page 1", "lang": "en"})
    data = []
    for n in range(rows):
        contact = contact_ids[n % len(contact_ids)] if n % 2 == 0 else None
        ticks = 0 if one_moment else n // RAW_PER_SECOND
        now = (clock + dt.timedelta(seconds=ticks)).isoformat(" ")
        data.append(
            (
                uuid.uuid4().hex,
                "page_view",
                contact,
                "" if contact else f"v{n % 5000}",
                props,
                f"https://acme.test/p/{n % 300}",
                "",
                "",
                "",
                "",
                "",
                "",
                now,
                now,
                "api",
            )
        )
    sql = (
        "INSERT INTO tracking_event (id, type, contact_id, visitor_id, properties, url, referrer,"
        " utm_source, utm_medium, utm_campaign, utm_term, utm_content, occurred_at, received_at,"
        " source) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (id) DO NOTHING"
    )
    started = time.perf_counter()
    for start in range(0, rows, batch):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, data[start : start + batch])
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return rows / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker")
    parser.add_argument("--connections", type=int, default=6, help="wrk connections")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--skip-single", action="store_true")
    parser.add_argument("--skip-batch", action="store_true", help="single events only")
    parser.add_argument("--skip-raw", action="store_true", help="no raw-SQLite baseline")
    parser.add_argument("--keep", action="store_true", help="keep the data folder")
    parser.add_argument(
        "--one-moment",
        action="store_true",
        help="stamp every event with one moment (the run's start): new index entries then land "
        "anywhere in the (type, time, contact, url) index rather than at its end; the harder case",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("this benchmark drives the server with wrk: apt-get install wrk")

    workdir = Path(tempfile.mkdtemp(prefix="embudo-bench-ingest-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBUDO_")}
    env.update(
        EMBUDO_DATA_DIR=str(workdir / "data"),
        DJANGO_SETTINGS_MODULE="embudo.settings",
        EMBUDO_SECRET_KEY="bench",
    )
    db = workdir / "data" / "embudo.sqlite3"
    print(f"data folder: {workdir}")
    subprocess.run(["embudo", "migrate", "-v0"], env=env, check=True, cwd=REPO)
    key = (
        subprocess.run(
            [sys.executable, "-c", SETUP.format(contacts=CONTACTS)],
            env=env,
            check=True,
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )

    port = free_port()
    server = subprocess.Popen(
        [
            "embudo",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
            "--threads",
            str(args.threads),
        ],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(port, timeout=120.0)  # a busy machine takes a while to boot Django
        print(
            f"server: embudo serve, {args.workers} workers x {args.threads} threads; load: wrk, "
            f"1 thread, {args.connections} connections; {os.cpu_count()} CPUs shared by both"
        )
        runs = [] if args.skip_batch else [(args.batch, args.seconds)]
        if not args.skip_single:
            runs.append((1, args.seconds))
        run_wrk(port, key, runs[0][0], 2, args.connections, workdir, args.one_moment)  # warm-up
        results = {}
        for batch, seconds in runs:
            time.sleep(1.0)  # let requests wrk gave up on finish before counting
            load_before = os.getloadavg()[0]
            before = count_events(db)
            cpu = ServerCpu(server.pid)
            cpu.start()
            result = run_wrk(port, key, batch, seconds, args.connections, workdir, args.one_moment)
            server_cpu = cpu.stop()
            stored = count_events(db) - before
            results[batch] = result
            print(
                f"batch {batch:>4}: {result['events_per_s']:>9,.0f} events/s  "
                f"{result['requests_per_s']:>7,.0f} requests/s  p50 {result['p50']}  "
                f"p99 {result['p99']}  non-2xx {result['non_2xx']:.0f}  "
                f"stored {stored:,} events in {seconds} s {result['socket_errors']}"
            )
            print(
                f"            server CPU {server_cpu:.1f} s = {stored / server_cpu:,.0f} events "
                f"per server CPU-second; wrk CPU {result['wrk_cpu']:.1f} s; "
                f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
            )
        pids = children(server.pid)
        print(f"server peak memory: {peak_rss_mb(pids):.0f} MB across {len(pids)} workers")
    finally:
        server.terminate()
        server.wait(timeout=30)

    total = count_events(db)
    print(f"events in the database: {total:,}")
    if args.skip_raw:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        return
    rows = 200_000
    raw_batch = raw_baseline(db, rows, args.batch, args.one_moment)
    raw_single = raw_baseline(db, 20_000, 1, args.one_moment)
    print(f"raw SQLite, one process, {args.batch} rows per transaction: {raw_batch:,.0f} rows/s")
    print(f"raw SQLite, one process, 1 row per transaction: {raw_single:,.0f} rows/s")
    if args.batch in results:
        http_batch = results[args.batch]["events_per_s"]
        print(f"ratio HTTP/raw for batches of {args.batch}: {http_batch / raw_batch:.2f}")
    if 1 in results:
        print(f"ratio HTTP/raw for single events: {results[1]['events_per_s'] / raw_single:.2f}")
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
