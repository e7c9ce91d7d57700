"""The redirect /l/<slug>[/<token>]: UTM, expiry, on/off, who counts as a click, the rate limit,
and the fast WSGI door in front of Django answering exactly as the Django view does."""

from __future__ import annotations

import io
from datetime import timedelta
from wsgiref.util import setup_testing_defaults

import pytest
from django.utils import timezone

from links.models import Click, DeviceClass, PersonalLink
from links.redirect import destination_with_utm
from links.services import link_update
from links.tests.conftest import BROWSER_UA, DESKTOP_UA

pytestmark = pytest.mark.django_db


def follow(client, path, ua=BROWSER_UA, **headers):
    return client.get(path, HTTP_USER_AGENT=ua, **headers)


def test_a_short_link_redirects_to_its_destination_with_its_utm_parameters(client, make_link):
    link = make_link(
        slug="summer", destination="https://shop.example.com/s?ref=x", utm={"utm_source": "sms", "utm_campaign": "june"}
    )

    response = follow(client, "/l/summer")

    assert response.status_code == 302
    assert response["Location"] == "https://shop.example.com/s?ref=x&utm_source=sms&utm_campaign=june"
    assert response["Cache-Control"] == "no-store" and response["Referrer-Policy"] == "no-referrer"
    assert Click.objects.filter(link=link).count() == 1


def test_utm_parameters_already_in_the_destination_are_kept_as_they_are():
    assert (
        destination_with_utm("https://a.example/?utm_source=web&q=1", {"utm_source": "sms", "utm_medium": "text"})
        == "https://a.example/?utm_source=web&q=1&utm_medium=text"
    )


def test_an_unknown_or_switched_off_link_answers_404_and_records_nothing(client, operator, make_link):
    link = make_link(slug="gone-soon")
    link_update(link=link, user=operator, enabled=False)

    assert follow(client, "/l/gone-soon").status_code == 404
    assert follow(client, "/l/never-made").status_code == 404
    assert follow(client, "/l/bad%20slug").status_code == 404
    assert not Click.objects.exists()


def test_switching_a_link_back_on_serves_it_again(client, operator, make_link):
    link = make_link(slug="toggle", enabled=False)
    assert follow(client, "/l/toggle").status_code == 404
    link_update(link=link, user=operator, enabled=True)
    assert follow(client, "/l/toggle").status_code == 302


def test_an_expired_link_answers_410(client, operator, make_link):
    link = make_link(slug="flash", expires_at=timezone.now() + timedelta(hours=1))
    assert follow(client, "/l/flash").status_code == 302
    link_update(link=link, user=operator, expires_at=timezone.now() - timedelta(seconds=1))

    response = follow(client, "/l/flash")

    assert response.status_code == 410 and b"expired" in response.content
    assert Click.objects.count() == 1


def test_a_click_records_its_time_referrer_host_and_device_class_but_not_the_referrer_path(client, make_link):
    link = make_link(slug="refs")
    before = timezone.now()

    follow(client, "/l/refs", HTTP_REFERER="https://news.example.org/article/123?user=asha")
    follow(client, "/l/refs", ua=DESKTOP_UA)
    follow(client, "/l/refs", ua="Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148")

    clicks = list(Click.objects.filter(link=link).order_by("clicked_at"))
    assert [c.device for c in clicks] == [DeviceClass.MOBILE, DeviceClass.DESKTOP, DeviceClass.TABLET]
    assert clicks[0].referrer_host == "news.example.org" and clicks[1].referrer_host == ""
    assert all(c.clicked_at >= before for c in clicks)


@pytest.mark.parametrize(
    "agent",
    [
        "WhatsApp/2.23.20.0 A",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "Twitterbot/1.0",
        "TelegramBot (like TwitterBot)",
        "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
        "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (compatible; SomeCrawler/1.0)",
        "MegaIndex spider",
        "",
    ],
)
def test_link_preview_fetchers_and_crawlers_are_redirected_but_not_counted(client, make_link, agent):
    make_link(slug="preview")

    response = follow(client, "/l/preview", ua=agent)

    assert response.status_code == 302
    assert not Click.objects.exists()


def test_a_personal_link_attributes_the_click_to_its_contact_and_bulk_job(client, make_link, make_contact):
    link = make_link(slug="personal")
    contact = make_contact(name="Asha")
    PersonalLink.objects.create(token="tok_Asha123", link=link, contact=contact)

    response = follow(client, "/l/personal/tok_Asha123")

    assert response.status_code == 302 and response["Location"] == link.destination
    click = Click.objects.get()
    assert click.contact == contact and click.personal.token == "tok_Asha123"


def test_a_token_of_another_link_still_redirects_but_attributes_nothing(client, make_link, make_contact):
    mine, other = make_link(slug="mine"), make_link(slug="other")
    PersonalLink.objects.create(token="tok_other00", link=other, contact=make_contact())

    response = follow(client, "/l/mine/tok_other00")

    assert response.status_code == 302
    click = Click.objects.get()
    assert click.link == mine and click.contact is None and click.personal is None


def test_one_source_is_limited_per_minute_and_others_are_not(client, make_link, settings):
    settings.LINK_RATE_LIMIT_PER_MINUTE = 3
    settings.TRUSTED_PROXY_HOPS = 1
    make_link(slug="limited")

    answers = [follow(client, "/l/limited", HTTP_X_FORWARDED_FOR="203.0.113.9").status_code for _ in range(4)]
    other = follow(client, "/l/limited", HTTP_X_FORWARDED_FOR="198.51.100.7")

    assert answers == [302, 302, 302, 429]
    assert other.status_code == 302
    assert Click.objects.count() == 4


def _wsgi(path: str, **environ) -> tuple[str, dict, bytes]:
    from wecare.wsgi import application

    env = {"PATH_INFO": path, "REQUEST_METHOD": "GET", "HTTP_USER_AGENT": BROWSER_UA, **environ}
    setup_testing_defaults(env)
    env["wsgi.input"] = io.BytesIO()
    answered = {}

    def start_response(status, headers, exc_info=None):
        answered["status"], answered["headers"] = status, dict(headers)

    body = b"".join(application(env, start_response))
    return answered["status"], answered["headers"], body


@pytest.mark.django_db(transaction=True)
def test_the_fast_wsgi_door_redirects_and_records_like_the_django_view(make_link):
    link = make_link(slug="fastdoor", utm={"utm_medium": "qr"})

    status, headers, _ = _wsgi("/l/fastdoor")
    missing, _, body = _wsgi("/l/nothing-here")
    django_page, _, _ = _wsgi("/healthz/live")

    assert status == "302 Found" and headers["Location"] == "https://shop.example.com/summer?utm_medium=qr"
    assert headers["Cache-Control"] == "no-store"
    assert missing == "404 Not Found" and b"does not exist" in body
    assert django_page.startswith("200")  # everything else is Django's
    assert Click.objects.filter(link=link).count() == 1


@pytest.mark.django_db(transaction=True)
def test_buffered_clicks_are_written_in_a_batch_by_the_flusher(make_link, settings):
    from conftest import wait_until
    from links.clicks import ClickRecorder, PendingClick

    settings.LINK_CLICK_FLUSH_SECONDS = 0.05
    link = make_link(slug="buffered")
    recorder = ClickRecorder()

    for _ in range(25):
        recorder.record(PendingClick(link.pk, timezone.now(), "", DeviceClass.MOBILE, ""))

    try:
        wait_until(lambda: Click.objects.filter(link=link).count() == 25, timeout=10, message="25 clicks written")
        assert recorder.pending == []
    finally:
        recorder.stop()
