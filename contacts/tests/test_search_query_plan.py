"""Search at scale: on PostgreSQL the query must be served by the GIN trigram index
(contacts/migrations/0002), not by reading the whole table."""

from __future__ import annotations

import pytest
from django.db import connection

from contacts.models import ConsentSource
from contacts.selectors import contact_search
from contacts.services import contact_create

pytestmark = pytest.mark.django_db

ROWS = 20_000


@pytest.fixture
def many_contacts():
    if connection.vendor != "postgresql":
        pytest.skip("the trigram index exists on PostgreSQL only")
    with connection.cursor() as cursor:
        # Building the index once after the load is much faster than growing it row by row; the
        # test's transaction rolls all of this back.
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'contact_search_trgm'")
        (index_sql,) = cursor.fetchone()
        cursor.execute("DROP INDEX contact_search_trgm")
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
        cursor.execute(index_sql)
    contact_create(name="José Álvarez", phone="+919876543210", email="jose@alvarez.example", source=ConsentSource.API)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE contacts_contact")


def plan(queryset) -> str:
    # At 20,000 rows a sequential scan is still about as cheap as the index for the planner;
    # at a million (bench/contacts_search.py) it is not. Ruling it out here keeps the test about
    # what matters: the query has the shape the trigram index serves.
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    try:
        return queryset.explain(analyze=True)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = on")


def test_name_phone_and_email_searches_use_the_trigram_index(many_contacts):
    for query in ("álvarez", "JOSÉ", "98765 43210", "+91 98765-43210", "0091 98765 43210", "jose@alvarez"):
        page = contact_search(query=query)[:50]

        text = plan(page)

        assert "contact_search_trgm" in text, f"{query}: {text}"
        assert "Seq Scan" not in text, f"{query}: {text}"
        assert [c.name for c in page] == ["José Álvarez"], query


def test_counting_search_results_uses_the_trigram_index_too(many_contacts):
    text = plan(contact_search(query="alvarez").values("pk"))

    assert "contact_search_trgm" in text, text
    assert contact_search(query="alvarez").count() == 1


def test_the_query_is_a_like_on_the_lower_cased_column_the_index_covers():
    sql = str(contact_search(query="JOSÉ").query)

    assert '"contacts_contact"."search_text"::text LIKE %jose%' in sql
    assert '"contacts_contact"."deleted_at" IS NULL' in sql
    assert "UPPER(" not in sql
