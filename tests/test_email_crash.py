"""Exactly once, with a worker that dies: `embudo worker` is made to `os._exit` at each step of a
delivery (after the claim, after the message without its final dot, after marking it sending,
after the dot, after the server's reply), against a real SMTP server that counts what each
recipient got; a fresh worker then finishes the send.

Every recipient gets exactly one message, but at one step: dying between the commit of
``sending`` and the write of the final ``.`` loses that one message (counted as sent, never
received). That is the documented loss window (docs/sending.md); nothing is ever sent twice.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from embudo.automation.sending import KILL_AT_VARIABLE
from tests.embudo_processes import embudo_environment, run_embudo, run_ok
from tests.mailroom import CountingSMTP

pytestmark = pytest.mark.slow

SETUP = (
    "from tests.mailroom import make_brand, make_template; "
    "make_brand(); make_template('Crash test')"
)
START = (
    "from embudo.automation import sending; from tests.mailroom import make_audience; "
    "send = sending.create_send(template='Crash test', "
    "segment=make_audience(10, name={step!r}), actor=None); "
    "sending.start_send(send, actor=None); print(send.pk)"
)
REPORT = (
    "import json; from embudo.automation.models import Delivery, Send; "
    "print(json.dumps({{'send': Send.objects.get(pk={send}).state, 'deliveries': "
    "list(Delivery.objects.filter(send_id={send}).order_by('id')"
    ".values('email', 'state', 'error'))}}))"
)

#: Where the worker dies, and at which delivery (the claim happens once per batch).
KILLS = [("claimed", 1), ("body", 3), ("sending", 3), ("dot", 3), ("replied", 3)]


def test_a_worker_killed_at_any_step_never_sends_a_message_twice(tmp_path: Path) -> None:
    with (
        CountingSMTP() as smtp,
        embudo_environment(
            tmp_path,
            "sendcrash",
            EMBUDO_EMAIL_HOST="127.0.0.1",
            EMBUDO_EMAIL_PORT=str(smtp.port),
        ) as env,
    ):
        run_ok(env, "migrate", "-v0")
        run_ok(env, "shell", "-c", SETUP)
        outcomes = {}
        for step, nth in KILLS:
            send = int(run_ok(env, "shell", "-c", START.format(step=step)).split()[-1])
            killed = run_embudo({**env, KILL_AT_VARIABLE: f"{step}:{nth}"}, "worker", "--batch")
            assert killed.returncode == 70, f"the worker did not die at {step}:\n{killed.stderr}"
            delivered_before_restart = sum(smtp.received.values())
            run_ok(env, "worker", "--batch")
            shown = run_ok(env, "shell", "-c", REPORT.format(send=send))
            report = json.loads(shown.strip().splitlines()[-1])
            outcomes[step] = (report, delivered_before_restart)

    for step, (report, _before) in outcomes.items():
        rows = report["deliveries"]
        received = {row["email"]: smtp.received[row["email"]] for row in rows}
        assert report["send"] == "done", step
        assert {row["state"] for row in rows} == {"sent"}, step
        assert max(received.values()) == 1, f"{step}: a message was sent twice: {received}"
        lost = [email for email, count in received.items() if count == 0]
        if step == "sending":
            # The loss window: the third message was marked sending, its "." never written.
            assert lost == [rows[2]["email"]], f"{step}: {received}"
            assert "counted as sent" in rows[2]["error"]
        else:
            assert lost == [], f"{step}: {lost} never got their message"
