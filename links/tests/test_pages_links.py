"""The Link pages through Django's test client: create, roles, stats, CSV, QR, on/off; the job and
contact pages showing clicks; the sidebar."""

from __future__ import annotations

import csv
import io

import pytest

from accounts.models import AuditLog
from bulk.models import BulkJob
from links.models import Click, PersonalLink, ShortLink

pytestmark = pytest.mark.django_db


def test_an_operator_creates_a_link_with_a_chosen_slug_and_lands_on_its_stats(operator_client):
    response = operator_client.post(
        "/link/",
        {"destination": "https://shop.example.com/june", "slug": "june-sale", "utm_source": "sms"},
    )

    link = ShortLink.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/link/{link.pk}/"
    assert (link.slug, link.utm_source) == ("june-sale", "sms")
    assert AuditLog.objects.filter(action="link.create", resource_id=str(link.pk)).exists()
    page = operator_client.get(response["Location"]).content.decode()
    assert "/l/june-sale" in page and 'data-testid="clicks-chart"' in page


def test_an_empty_slug_gets_a_generated_one(operator_client):
    operator_client.post("/link/", {"destination": "https://shop.example.com/"})
    assert len(ShortLink.objects.get().slug) == 7


def test_a_bad_destination_is_explained_and_what_was_typed_is_kept(operator_client):
    response = operator_client.post("/link/", {"destination": "javascript:alert(1)", "slug": "kept-slug"})

    page = response.content.decode()
    assert response.status_code == 200
    assert "Only http:// and https:// addresses can be linked to." in page
    assert 'value="kept-slug"' in page
    assert not ShortLink.objects.exists()


def test_a_taken_slug_is_refused(operator_client, make_link):
    make_link(slug="taken")
    response = operator_client.post("/link/", {"destination": "https://a.example/", "slug": "TAKEN"})
    assert "is taken" in response.content.decode() and ShortLink.objects.count() == 1


def test_a_viewer_may_read_but_not_create_or_switch_links_and_is_audited(viewer_client, make_link):
    link = make_link(slug="readonly")

    listed = viewer_client.get("/link/")
    created = viewer_client.post("/link/", {"destination": "https://a.example/"})
    toggled = viewer_client.post(f"/link/{link.pk}/toggle/", {"enabled": "false"})

    assert listed.status_code == 200 and "/l/readonly" in listed.content.decode()
    assert "New short link" not in listed.content.decode()
    assert created.status_code == 403 and toggled.status_code == 403
    assert ShortLink.objects.count() == 1 and ShortLink.objects.get().enabled
    assert AuditLog.objects.filter(action="forbidden").count() == 2


def test_a_user_without_a_role_gets_403(page_user, client):
    client.force_login(page_user(None))
    assert client.get("/link/").status_code == 403


def test_switching_a_link_off_and_on_from_its_page(operator_client, make_link):
    link = make_link(slug="switchme")

    operator_client.post(f"/link/{link.pk}/toggle/", {"enabled": "false"})
    off = operator_client.get("/l/switchme", HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64)").status_code
    operator_client.post(f"/link/{link.pk}/toggle/", {"enabled": "true"})
    on = operator_client.get("/l/switchme", HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64)").status_code

    assert (off, on) == (404, 302)
    assert AuditLog.objects.filter(action="link.update").count() == 2


def test_the_stats_page_counts_clicks_people_and_devices(viewer_client, make_link, make_contact):
    link = make_link(slug="counted")
    contact = make_contact()
    personal = PersonalLink.objects.create(token="tok-counted", link=link, contact=contact)
    Click.objects.create(link=link, device="mobile", referrer_host="news.example.org")
    Click.objects.create(link=link, device="desktop", personal=personal, contact=contact)

    page = viewer_client.get(f"/link/{link.pk}/").content.decode()

    assert 'data-count="clicks">2<' in page and 'data-count="people">1<' in page
    assert 'data-count="attributed">1<' in page and "news.example.org" in page
    assert page.count('class="bar"') == 30 and 'data-count="2"' in page  # 30 days; today has 2


def test_the_clicks_csv_is_formula_safe(viewer_client, make_link):
    link = make_link(slug="csvlink")
    Click.objects.create(link=link, device="mobile", referrer_host="=cmd|' /C calc'!A0")

    response = viewer_client.get(f"/link/{link.pk}/clicks.csv")

    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert response["Content-Disposition"] == 'attachment; filename="clicks-csvlink.csv"'
    assert rows[0] == ["clicked_at", "device", "referrer_host", "contact_id", "bulk_job_id"]
    assert rows[1][2] == "'=cmd|' /C calc'!A0"


def test_the_qr_code_is_a_png_and_an_svg_of_the_short_url(viewer_client, make_link, settings):
    settings.LINK_BASE_URL = "https://go.example.com"
    link = make_link(slug="qr-code")

    png = viewer_client.get(f"/link/{link.pk}/qr.png")
    svg = viewer_client.get(f"/link/{link.pk}/qr.svg?download=1")

    assert png["Content-Type"] == "image/png" and png.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert svg["Content-Type"] == "image/svg+xml" and b"<svg" in svg.content
    assert svg["Content-Disposition"] == 'attachment; filename="link-qr-code.svg"'
    page = viewer_client.get(f"/link/{link.pk}/").content.decode()
    assert "https://go.example.com/l/qr-code" in page


def test_the_bulk_job_page_shows_clicks_and_click_through_rate(operator, operator_client, make_link, make_contact):
    link = make_link(slug="jobclicks")
    job = BulkJob.objects.create(channel="sms", recipient_source="ids", sent_count=4, created_by=operator)
    contact = make_contact()
    Click.objects.create(link=link, bulk_job=job, contact=contact)

    page = operator_client.get(f"/bulk/{job.pk}/").content.decode()

    assert 'data-testid="job-clicks"' in page
    assert 'data-count="clicks">1<' in page and 'data-count="ctr">25.0%<' in page


def test_the_contact_page_shows_what_they_clicked(viewer_client, make_link, make_contact):
    link = make_link(slug="contactclick")
    contact = make_contact(name="Asha")
    Click.objects.create(link=link, contact=contact, device="mobile")

    page = viewer_client.get(f"/contacts/{contact.pk}/").content.decode()

    assert 'data-testid="contact-clicks"' in page and "/l/contactclick" in page


def test_the_sidebar_opens_link_instead_of_coming_soon(viewer_client):
    home = viewer_client.get("/").content.decode()
    page = viewer_client.get("/link/").content.decode()

    assert 'href="/link/"' in home
    assert "<title>Link · WECARE.DIGITAL</title>" in page and "Coming soon" not in page
    assert 'data-nav="link" aria-current="page"' in page
