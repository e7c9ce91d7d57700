"""Search at scale: on PostgreSQL each kind of search is served by its index, never by reading
the whole table. (bench/contacts_search.py shows the same plans at a million contacts.)"""

from __future__ import annotations

import pytest
from django.db import connection

from contacts.models import ConsentSource, Contact
from contacts.selectors import contact_search
from contacts.services import contact_create

pytestmark = pytest.mark.django_db

ROWS = 10_000
INDEXES = ("contact_search_trgm", "contact_search_prefix", "contact_active_newest")


@pytest.fixture
def many_contacts():
    if connection.vendor != "postgresql":
        pytest.skip("these indexes exist on PostgreSQL only")
    with connection.cursor() as cursor:
        # Building the indexes once after the load is much faster than growing them row by row;
        # the test's transaction rolls all of this back.
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE indexname = ANY(%s)", [list(INDEXES)])
        definitions = dict(cursor.fetchall())
        assert set(definitions) == set(INDEXES), "a search index is missing: check the migrations"
        for name in definitions:
            cursor.execute(f"DROP INDEX {name}")
        # Filler rows shaped like real ones (name, email, phone digit forms in search_text).
        cursor.execute(
            """
            INSERT INTO contacts_contact
                (id, name, phone, email, opt_in_whatsapp, opt_in_sms, opt_in_email,
                 search_text, created_at, updated_at)
            SELECT gen_random_uuid(), 'person ' || i, '+9170' || lpad(i::text, 8, '0'),
                   'person' || i || '@example.com', false, false, false,
                   'person ' || i || ' person' || i || '@example.com 9170' || lpad(i::text, 8, '0')
                       || ' 070' || lpad(i::text, 8, '0'),
                   now() - i * interval '1 second', now()
            FROM generate_series(1, %s) AS i
            """,
            [ROWS],
        )
        for sql in definitions.values():
            cursor.execute(sql)
    contact_create(name="José Álvarez", phone="+919876543210", email="jose@alvarez.example", source=ConsentSource.API)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE contacts_contact")


def plan(queryset) -> str:
    # At 10,000 rows a sequential scan is still about as cheap as an index for the planner; at a
    # million it is not. Ruling it out keeps the test about what matters: each query has the
    # shape its index serves.
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    try:
        return queryset.explain(analyze=True)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = on")


def test_each_kind_of_search_is_served_by_its_index(many_contacts):
    cases = [
        # words and phone fragments: the trigram index
        ("álvarez", "contact_search_trgm"),
        ("JOSÉ", "contact_search_trgm"),
        ("jose@alvarez", "contact_search_trgm"),
        ("98765 432", "contact_search_trgm"),
        ("+91 98765", "contact_search_trgm"),
        # a complete phone number in any form: the phone's unique index
        ("98765 43210", "contact_phone_unique_when_active"),
        ("+91 98765-43210", "contact_phone_unique_when_active"),
        ("0091 98765 43210", "contact_phone_unique_when_active"),
        # one or two characters: the prefix index
        ("jo", "contact_search_prefix"),
    ]
    for query, index in cases:
        page = contact_search(query=query)[:50]

        text = plan(page)

        assert index in text, f"{query!r} should use {index}:\n{text}"
        assert "Seq Scan" not in text, f"{query!r}:\n{text}"
        assert [c.name for c in page] == ["José Álvarez"], query

    count_plan = plan(contact_search(query="alvarez").order_by().values("pk"))
    assert "contact_search_trgm" in count_plan, count_plan


def test_the_list_without_search_reads_only_its_first_page_from_the_order_index(many_contacts):
    text = plan(Contact.objects.active()[:50])

    assert "contact_active_newest" in text, text
    assert "rows=50 loops=1" in text.splitlines()[1], text


def test_the_search_query_is_a_like_on_the_lower_cased_column_the_index_covers():
    sql = str(contact_search(query="JOSÉ").query)

    assert '"contacts_contact"."search_text"::text LIKE %jose%' in sql
    assert '"contacts_contact"."deleted_at" IS NULL' in sql
    assert "UPPER(" not in sql
