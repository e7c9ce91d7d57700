"""Segment preview at a million contacts on PostgreSQL: count + the gate's skip breakdown + a sample.

    scripts/with-services.sh .venv/bin/python bench/segment_preview.py [--rows N] [--keep]

Loads N contacts (default 1,000,000) with INSERT ... SELECT generate_series — attributes (city,
plan, visits, birthday), opt-ins, addresses, last inbound times spread over 90 days — and about
1.9 tag rows per contact over ten tags, then times `audiences.selectors.segment_preview` (what the
builder page and the API run) for typical segments. Target: ≤ 1 s per preview (issue 17). Prints
median and p95 per segment, the ratio of the worst median to the target, the EXPLAIN ANALYZE of
the slowest, and a final RESULT line.
"""

from __future__ import annotations

import argparse
import os
import time

from contacts_common import drop_database, summary, use_fresh_database

DB_NAME = "wecare_bench_segment_preview"
TARGET_MS = 1000.0
REPEAT = 7
# The indexes segments read (contacts migrations 0005, 0012, 0013).
INDEXES = ("contact_active_newest", "contact_attributes_gin", "contact_tag_ids_gin", "contact_last_inbound")
CITIES = [
    "Pune", "Mumbai", "Delhi", "Chennai", "Kolkata", "Bengaluru", "Hyderabad", "Jaipur", "Kochi", "Goa",
    "Surat", "Indore", "Nagpur", "Bhopal", "Patna", "Lucknow", "Mysuru", "Nashik", "Agra", "Vadodara",
]  # fmt: skip
# name → (m, r): the contacts whose generate_series number i has i % m = r carry it.
TAGS = {
    "newsletter": (2, 0),
    "vip": (10, 0),
    "churned": (7, 0),
    "pune-store": (20, 3),
    "beta": (100, 1),
    "diwali-2026": (3, 1),
    "wholesale": (50, 7),
    "referral": (9, 4),
    "app-user": (5, 1),
    "lapsed": (13, 5),
}

SEGMENTS = [
    ("every contact, WhatsApp template", {}, "whatsapp", "template"),
    ("tag vip, opted in to WhatsApp, template", {"tagsAny": ["vip"], "consent": {"whatsapp": True}},
     "whatsapp", "template"),
    ("tags all newsletter+app-user, none churned, SMS", {"tagsAll": ["newsletter", "app-user"],
     "tagsNone": ["churned"]}, "sms", "text"),
    ("city equals Pune, has email, email", {"attributes": [{"name": "city", "op": "equals", "value": "Pune"}],
     "hasAddress": ["email"]}, "email", "email"),
    ("plan pro, visits after 40, wrote in last 30 days, WhatsApp text",
     {"attributes": [{"name": "plan", "op": "equals", "value": "pro"}, {"name": "visits", "op": "after", "value": 40}],
      "lastInboundAfter": "30d"}, "whatsapp", "text"),
    ("inside the WhatsApp window, WhatsApp text", {"inWhatsAppWindow": True}, "whatsapp", "text"),
    ("born before 1980, created in the last 60 days, SMS",
     {"attributes": [{"name": "birthday", "op": "before", "value": "1980-01-01"}], "createdAfter": "60d"},
     "sms", "text"),
    ("city contains 'pur' (substring), any of beta/wholesale, email",
     {"attributes": [{"name": "city", "op": "contains", "value": "pur"}], "tagsAny": ["beta", "wholesale"]},
     "email", "email"),
    ("a tag nobody has", {"tagsAny": ["lapsed"], "tagsAll": ["beta", "vip"]}, "whatsapp", "template"),
]  # fmt: skip


def load(rows: int) -> None:
    from django.db import connection

    from contacts.models import AttributeDefinition, AttributeType

    AttributeDefinition.objects.create(name="city", type=AttributeType.TEXT)
    AttributeDefinition.objects.create(name="plan", type=AttributeType.CHOICE, choices=["free", "pro"])
    AttributeDefinition.objects.create(name="visits", type=AttributeType.NUMBER)
    AttributeDefinition.objects.create(name="birthday", type=AttributeType.DATE)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '512MB'")
        # The segment indexes are built once after the load, as a bulk load would.
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE indexname = ANY(%s)", [list(INDEXES)])
        definitions = dict(cursor.fetchall())
        assert set(definitions) == set(INDEXES), definitions
        for name in definitions:
            cursor.execute(f"DROP INDEX {name}")
        tag_ids, moduli, remainders = [], [], []
        for name, (modulus, remainder) in TAGS.items():
            cursor.execute("INSERT INTO contacts_tag (name, created_at) VALUES (%s, now()) RETURNING id", [name])
            tag_ids.append(cursor.fetchone()[0])
            moduli.append(modulus)
            remainders.append(remainder)
        # Phone: a permutation of i (7919 is prime to 10^9), unique and valid; none for i % 11 = 0,
        # which have an email instead. The id is md5(i) so the tag rows can name the contact; tag_ids
        # is what contacts.attributes keeps (the sorted ids of the contact's tags): checked below.
        cursor.execute(
            """
            INSERT INTO contacts_contact
                (id, name, phone, email, opt_in_whatsapp, opt_in_sms, opt_in_email, last_inbound_message_at,
                 attributes, tag_ids, search_text, created_at, updated_at, deleted_at)
            SELECT md5(i::text)::uuid,
                   'Contact ' || i,
                   CASE WHEN i %% 11 <> 0 THEN '+91' || (9000000000 + (i::bigint * 7919) %% 1000000000)::text END,
                   CASE WHEN i %% 6 <> 0 OR i %% 11 = 0 THEN 'c' || i || '@example.com' END,
                   i %% 3 <> 0, i %% 5 <> 0, i %% 7 <> 0,
                   CASE WHEN i %% 4 = 0 THEN now() - (i %% 2160) * interval '1 hour' END,
                   CASE WHEN i %% 10 = 9 THEN '{}'::jsonb ELSE jsonb_build_object(
                       'city', (%(cities)s::text[])[1 + i %% 20],
                       'plan', CASE WHEN i %% 3 = 0 THEN 'pro' ELSE 'free' END,
                       'visits', i %% 50,
                       'birthday', to_char(date '1950-01-01' + (i %% 20000), 'YYYY-MM-DD')) END,
                   (SELECT coalesce(jsonb_agg(t.id ORDER BY t.id), '[]'::jsonb)
                      FROM unnest(%(tag_ids)s::bigint[], %(moduli)s::int[], %(remainders)s::int[]) AS t(id, m, r)
                     WHERE i %% t.m = t.r),
                   'contact ' || i,
                   now() - i * interval '1 minute',
                   now(),
                   CASE WHEN i %% 100 = 0 THEN now() END
            FROM generate_series(1, %(rows)s) AS i
            """,
            {"rows": rows, "cities": CITIES, "tag_ids": tag_ids, "moduli": moduli, "remainders": remainders},
        )
        contacts_loaded = time.perf_counter()
        cursor.execute("ALTER TABLE contacts_contacttag DROP CONSTRAINT IF EXISTS contact_tag_once")
        cursor.execute("DROP INDEX IF EXISTS contact_tag_by_tag")
        for tag_id, modulus, remainder in zip(tag_ids, moduli, remainders, strict=True):
            cursor.execute(
                "INSERT INTO contacts_contacttag (contact_id, tag_id, created_at) "
                "SELECT md5(i::text)::uuid, %s, now() FROM generate_series(1, %s) AS i WHERE i %% %s = %s",
                [tag_id, rows, modulus, remainder],
            )
        cursor.execute("ALTER TABLE contacts_contacttag ADD CONSTRAINT contact_tag_once UNIQUE (contact_id, tag_id)")
        cursor.execute("CREATE INDEX contact_tag_by_tag ON contacts_contacttag (tag_id, contact_id)")
        tags_loaded = time.perf_counter()
        for sql in definitions.values():
            cursor.execute(sql)
        indexed = time.perf_counter()
        cursor.execute("VACUUM ANALYZE contacts_contact")
        cursor.execute("VACUUM ANALYZE contacts_contacttag")
        cursor.execute("SELECT count(*) FROM contacts_contacttag")
        (tag_rows,) = cursor.fetchone()
    print(
        f"loaded {rows:,} contacts in {contacts_loaded - started:.1f} s, {tag_rows:,} tag rows in "
        f"{tags_loaded - contacts_loaded:.1f} s, segment indexes built in {indexed - tags_loaded:.1f} s, "
        f"vacuum analyze {time.perf_counter() - indexed:.1f} s"
    )


def check_sample() -> None:
    """The generated rows pass the same checks the services apply on write."""
    from contacts.attributes import contact_attributes_clean
    from contacts.models import Contact, ContactTag
    from contacts.phones import normalize_phone

    sample = list(Contact.objects.order_by("created_at")[:3000:11])
    tag_rows: dict = {}
    for contact_id, tag_id in (
        ContactTag.objects.filter(contact__in=sample).order_by("tag_id").values_list("contact_id", "tag_id")
    ):
        tag_rows.setdefault(contact_id, []).append(tag_id)
    for contact in sample:
        assert contact.tag_ids == tag_rows.get(contact.pk, []), (contact.tag_ids, tag_rows.get(contact.pk))
        if contact.phone:
            assert normalize_phone(contact.phone) == contact.phone, contact.phone
        assert contact_attributes_clean(contact.attributes) == contact.attributes, contact.attributes
    print(
        f"checked {len(sample)} generated rows: E.164 phones, attributes and tag_ids as contacts.attributes keeps them"
    )


def check_against_gate(spec: dict, channel: str, message_type: str) -> None:
    """On a slice of the million, the preview's classification equals the gate's own decisions."""
    from collections import Counter

    from django.conf import settings

    from audiences.selectors import gate_code_annotation, segment_contacts
    from messaging.safety import SendRequest, safety_evaluate_many

    phone = settings.WHATSAPP_PHONE_NUMBER_IDS[0] if settings.WHATSAPP_PHONE_NUMBER_IDS else "bench-phone"
    settings.WHATSAPP_PHONE_NUMBER_IDS = [phone]
    members = list(
        segment_contacts(spec)
        .annotate(gate_code=gate_code_annotation(channel=channel, message_type=message_type, now=_now()))
        .order_by("-created_at")[:2000]
    )
    message = {"text": "Hello"} if message_type == "text" else {"subject": "Hi", "text": "Hello"}
    requests = [
        SendRequest(contact_id=c.pk, channel=channel, message_type=message_type, origination_phone_number_id=phone,
                    **message)
        for c in members
    ]  # fmt: skip
    decisions = safety_evaluate_many(requests, now=_now(), contacts={str(c.pk): c for c in members})
    gate = [getattr(d, "code", "") for d in decisions]
    assert gate == [c.gate_code for c in members], "the preview and the gate disagree"
    print(f"gate check ({channel} {message_type}, {len(members)} members): identical decisions {dict(Counter(gate))}")


_NOW = None


def _now():
    return _NOW


def run(rows: int) -> None:
    global _NOW
    from django.db import connection
    from django.utils import timezone

    from audiences.selectors import segment_preview
    from audiences.spec import spec_clean

    load(rows)
    check_sample()
    _NOW = timezone.now()
    check_against_gate({"hasAddress": ["sms"]}, "whatsapp", "text")
    check_against_gate({"tagsAny": ["vip"]}, "email", "email")

    print(f"\nsegment_preview at {rows:,} contacts (median / p95 of {REPEAT}, target ≤ {TARGET_MS:.0f} ms):")
    results = []
    for label, raw, channel, message_type in SEGMENTS:
        spec = spec_clean(raw)

        def preview(spec=spec, channel=channel, message_type=message_type):
            return segment_preview(spec, channel=channel, message_type=message_type)

        first = preview()
        values = []
        for _ in range(REPEAT):
            started = time.perf_counter()
            preview()
            values.append((time.perf_counter() - started) * 1000)
        median, p95 = summary(values)
        results.append((median, p95, label, spec, channel, message_type))
        skipped = ", ".join(f"{k} {v:,}" for k, v in first.skipped.items()) or "none"
        print(f"  {median:7.1f} / {p95:7.1f} ms  {label}: {first.total:,} members, would send "
              f"{first.will_send:,}, skipped {skipped}")  # fmt: skip

    worst = max(results)
    median, p95, label, spec, channel, message_type = worst
    print(f"\nslowest: {label} — EXPLAIN ANALYZE of its count query:")
    from audiences.selectors import segment_contacts

    with connection.cursor() as cursor:
        sql, params = segment_contacts(spec).order_by().values("pk").query.sql_with_params()
        # sql is Django's own compilation of the segment's query, its values in params.
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS OFF) SELECT count(*) FROM ({sql}) AS members", params)  # noqa: S608
        for (line,) in cursor.fetchall():
            print("   ", line)
    load_avg = os.getloadavg()[0]
    ratio = median / TARGET_MS
    print(f"\nworst median {median:.1f} ms (p95 {p95:.1f} ms) = {ratio:.2f} × the {TARGET_MS:.0f} ms target "
          f"(load average {load_avg:.2f})")  # fmt: skip
    verdict = "PASS" if median <= TARGET_MS else "FAIL"
    print(
        f"RESULT segment_preview rows={rows} worst_median_ms={median:.1f} worst_p95_ms={p95:.1f} "
        f"target_ms={TARGET_MS:.0f} ratio={ratio:.2f} {verdict}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database afterwards")
    args = parser.parse_args()
    server = use_fresh_database(DB_NAME)
    try:
        run(args.rows)
    finally:
        if not args.keep:
            drop_database(server, DB_NAME)


if __name__ == "__main__":
    main()
