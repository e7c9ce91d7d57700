from __future__ import annotations

import pytest
from django.db import connection

from contacts import pagination
from contacts.models import Contact
from contacts.pagination import ContactPagination
from contacts.selectors import planner_estimate

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(api_client_for, viewer):
    return api_client_for(viewer)


@pytest.fixture
def twelve_contacts(make_contact):
    contacts = [make_contact(name=f"Person {i:02d}") for i in range(12)]
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE contacts_contact")
    return contacts


def walk(api, url, params):
    """Follow ``next`` until it is null; every page's body."""
    pages = [api.get(url, params).json()]
    while pages[-1]["next"]:
        pages.append(api.get(pages[-1]["next"]).json())
    return pages


def test_a_small_list_has_an_exact_count(api, twelve_contacts):
    body = api.get("/api/contacts/").json()

    assert (body["count"], body["countIsExact"], body["next"]) == (12, True, None)


def test_a_broad_list_reports_the_planner_estimate_and_still_pages_through_everything(
    api, twelve_contacts, monkeypatch
):
    if connection.vendor != "postgresql":
        pytest.skip("estimates come from PostgreSQL's planner")
    monkeypatch.setattr(pagination, "COUNT_EXACT_UP_TO", 5)
    monkeypatch.setattr(pagination, "ESTIMATE_FROM", 1)
    monkeypatch.setattr(ContactPagination, "page_size", 5)

    pages = walk(api, "/api/contacts/", {})

    assert all(page["countIsExact"] is False for page in pages)
    assert pages[0]["count"] == planner_estimate(Contact.objects.active())
    seen = [c["contactId"] for page in pages for c in page["results"]]
    assert seen == [str(c.pk) for c in sorted(twelve_contacts, key=lambda c: (c.created_at, c.pk), reverse=True)]
    assert [len(page["results"]) for page in pages] == [5, 5, 2]
    assert api.get("/api/contacts/", {"page": 4}).status_code == 404


def test_a_list_between_the_limits_is_counted_exactly(api, twelve_contacts, monkeypatch):
    monkeypatch.setattr(pagination, "COUNT_EXACT_UP_TO", 5)
    monkeypatch.setattr(pagination, "ESTIMATE_FROM", 10_000_000)
    monkeypatch.setattr(ContactPagination, "page_size", 5)

    pages = walk(api, "/api/contacts/", {})

    assert [(page["count"], page["countIsExact"]) for page in pages] == [(12, True)] * 3
    assert len({c["contactId"] for page in pages for c in page["results"]}) == 12


def test_searches_page_through_their_matches_with_either_kind_of_count(api, twelve_contacts, monkeypatch):
    monkeypatch.setattr(pagination, "COUNT_EXACT_UP_TO", 3)
    monkeypatch.setattr(pagination, "ESTIMATE_FROM", 1)
    monkeypatch.setattr(ContactPagination, "page_size", 4)

    pages = walk(api, "/api/contacts/", {"search": "person"})

    names = [c["name"] for page in pages for c in page["results"]]
    assert names == [f"Person {i:02d}" for i in range(12)]


@pytest.mark.parametrize("page", ["0", "-1", "abc"])
def test_a_bad_page_number_is_a_404(api, twelve_contacts, page):
    assert api.get("/api/contacts/", {"page": page}).status_code == 404
