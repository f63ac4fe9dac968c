"""How fast Embudo turns deliveries into finished, personalised messages.

What "one message" covers: :func:`embudo.automation.rendering.build_message` for one delivery
loaded as a sending batch loads them (``select_related("contact", "contact__company",
"contact__owner", "version")``) — subject, HTML and plain text rendered with the contact's
fields (first name with a fallback, company, owner, a custom property), every link made a signed
tracked click, the open pixel, the one-click unsubscribe headers and the VERP return path — and
then the message serialised to the bytes an SMTP server receives (``message().as_bytes()``).

It builds a throwaway SQLite database (migrated, a brand, a template in English and Spanish
with six links, contacts with companies and owners, one delivery each), loads the deliveries in
batches of 500 as a worker would, and renders every one. One process, so the figure is per core.

    python3 bench/email_render.py                  # 20,000 messages
    python3 bench/email_render.py --messages 2000  # the quick run

Target: at least 1,000 personalised messages a second per core.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BODY_EN = """<h1>Hi {{ contact.first_name|default:"there" }},</h1>
<p>Spring is here and {{ contact.company.name|default:"your team" }} can now try the new funnel
reports. {{ contact.owner.first_name|default:"We" }} picked three for you:</p>
<ul>
  <li><a href="https://example.com/reports/funnel?utm_source=newsletter&amp;utm_campaign=spring">
    Funnel by cohort</a></li>
  <li><a href="https://example.com/reports/velocity?utm_source=newsletter">Stage velocity</a></li>
  <li><a href="https://example.com/reports/attribution">Attribution, seven models</a></li>
</ul>
<p>You are on the <strong>{{ contact.properties.plan|default:"free" }}</strong> plan.
{% if contact.properties.plan == "pro" %}Your reports are already on.{% else %}
<a href="https://example.com/upgrade?email={{ contact.email|urlencode }}">Upgrade</a>
to try them.{% endif %}</p>
<p><a class="button" href="https://example.com/start">Open Embudo</a></p>
<p>Questions? Write to {{ contact.owner.email|default:"support@example.com" }} or read
<a href="https://example.com/docs">the docs</a>.</p>
"""
BODY_ES = BODY_EN.replace("Hi ", "Hola ").replace("Spring is here", "Llega la primavera")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--profile", action="store_true", help="print where the time goes")
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="embudo-bench-email-"))
    os.environ["EMBUDO_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "embudo.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    from django.contrib.auth.models import User

    from embudo.automation import authoring, rendering
    from embudo.automation.models import Delivery, SubscriptionType
    from embudo.crm.models import Company, Contact, ObjectType, PropertyDefinition

    n = args.messages
    t0 = time.perf_counter()
    PropertyDefinition.objects.create(
        object_type=ObjectType.CONTACT, name="plan", label="Plan", type="text"
    )
    authoring.save_brand(
        {
            "name": "Acme",
            "postal_address": "Calle Mayor 1, 28013 Madrid",
            "from_name": "Acme",
            "from_email": "news@acme.example",
            "reply_to": "hello@acme.example",
        },
        actor=None,
    )
    newsletter = SubscriptionType.objects.create(key="newsletter", name="Newsletter")
    template = authoring.create_template(
        name="Spring news",
        subscription_type=newsletter,
        content={
            "en": {
                "subject": 'Spring news for {{ contact.first_name|default:"you" }}',
                "preheader": "Three reports picked for {{ contact.company.name }}",
                "body": BODY_EN,
            },
            "es": {
                "subject": 'Novedades para {{ contact.first_name|default:"ti" }}',
                "preheader": "Tres informes para {{ contact.company.name }}",
                "body": BODY_ES,
            },
        },
        actor=None,
    )
    owners = [
        User.objects.create(username=f"rep{i}", first_name=f"Rep{i}", email=f"rep{i}@acme.example")
        for i in range(10)
    ]
    companies = Company.objects.bulk_create(
        [Company(name=f"Company {i}", domain=f"c{i}.example") for i in range(max(1, n // 10))]
    )
    Contact.objects.bulk_create(
        [
            Contact(
                email=f"person{i}@example.com",
                first_name="" if i % 7 == 0 else f"Person{i}",
                last_name="Example",
                company=companies[i % len(companies)] if i % 5 else None,
                owner=owners[i % len(owners)] if i % 3 else None,
                language="es" if i % 4 == 0 else "en",
                properties={"plan": "pro"} if i % 2 else {},
            )
            for i in range(n)
        ],
        batch_size=2000,
    )
    version = template.current
    Delivery.objects.bulk_create(
        [
            Delivery(version=version, contact_id=pk, email=email, language=language or "en")
            for pk, email, language in Contact.objects.values_list("pk", "email", "language")
        ],
        batch_size=2000,
    )
    ids = list(Delivery.objects.order_by("pk").values_list("pk", flat=True))
    print(f"set-up: {n:,} contacts and deliveries in {time.perf_counter() - t0:.1f} s")

    # A worker's first message parses the template and loads the URL map; time the rest.
    rendering.build_message(Delivery.objects.select_related("version", "contact").get(pk=ids[0]))
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    built = total_bytes = 0
    build_cpu = serialise_cpu = load_cpu = 0.0
    wall = time.perf_counter()
    cpu = time.process_time()
    for start in range(0, len(ids), args.batch):
        c0 = time.process_time()
        batch = list(
            Delivery.objects.filter(pk__in=ids[start : start + args.batch]).select_related(
                "contact", "contact__company", "contact__owner", "version"
            )
        )
        c1 = time.process_time()
        load_cpu += c1 - c0
        for delivery in batch:
            b0 = time.process_time()
            message = rendering.build_message(delivery)
            b1 = time.process_time()
            total_bytes += len(message.message().as_bytes())
            serialise_cpu += time.process_time() - b1
            build_cpu += b1 - b0
            built += 1
    wall = time.perf_counter() - wall
    cpu = time.process_time() - cpu
    if profiler is not None:
        import pstats

        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"messages:        {built:,} ({total_bytes / built / 1024:.1f} KiB each on average)")
    print(f"wall time:       {wall:.2f} s")
    print(f"rate:            {built / wall:,.0f} messages/s by the wall clock (one process)")
    print(f"CPU per message: {cpu / built * 1e6:,.0f} µs in all")
    print(f"  loading:       {load_cpu / built * 1e6:,.0f} µs (batches of {args.batch})")
    print(f"  build_message: {build_cpu / built * 1e6:,.0f} µs (render, links, headers)")
    print(f"  to bytes:      {serialise_cpu / built * 1e6:,.0f} µs (MIME serialisation)")
    print(f"peak memory:     {peak:,.0f} MB")
    per_core = built / build_cpu
    print(f"per core:        {per_core:,.0f} messages/s rendered (build_message CPU alone)")
    print(f"{'':17}{built / (build_cpu + serialise_cpu):,.0f} messages/s rendered and serialised")
    print(
        "target: >= 1,000 personalised messages/s per core:",
        "met" if per_core >= 1000 else "NOT met",
    )


if __name__ == "__main__":
    main()
