"""Staff side of Forms: pages by role (Operator+ manage, 403 + audit otherwise), the builder making
versions, submissions list and formula-safe CSV, the API, the admin, the sidebar and the metric."""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client

from accounts.models import AuditLog
from contacts.models import Contact
from webforms.models import Form, FormSubmission
from webforms.services import form_token
from wecare.tests.log_capture import captured_logs

pytestmark = pytest.mark.django_db

BUILDER = {
    "name": "Diwali offers",
    "slug": "diwali",
    "title": "Diwali offers",
    "intro": "Be the first to hear.",
    "ask_name": "optional",
    "ask_phone": "required",
    "ask_email": "off",
    "consent_whatsapp": "Yes, send me Diwali offers on WhatsApp.",
    "consent_sms": "",
    "consent_email": "",
    "email_double_opt_in": "on",
    "is_published": "on",
    "embed_origins": "",
}


def test_the_sidebar_opens_forms_instead_of_coming_soon(viewer_client):
    html = viewer_client.get("/").content.decode()

    assert 'href="/forms/"' in html
    assert viewer_client.get("/forms/").status_code == 200


def test_an_operator_builds_a_form_and_editing_the_wording_makes_a_new_version(operator_client):
    response = operator_client.post("/forms/new/", BUILDER)

    form = Form.objects.get(slug="diwali")
    assert response.status_code == 302 and response["Location"] == f"/forms/{form.pk}/"
    assert form.current_version.number == 1
    assert form.current_version.consent_wording() == {"whatsapp": "Yes, send me Diwali offers on WhatsApp."}
    detail = operator_client.get(f"/forms/{form.pk}/").content.decode()
    assert "/f/diwali/" in detail and "&lt;iframe src=&quot;http://testserver/f/diwali/&quot;" in detail

    operator_client.post(f"/forms/{form.pk}/edit/", {**BUILDER, "embed_origins": "https://www.example.org"})
    form.refresh_from_db()
    assert form.current_version.number == 1 and form.embed_origins == "https://www.example.org"  # no new version

    operator_client.post(f"/forms/{form.pk}/edit/", {**BUILDER, "consent_whatsapp": "Yes, WhatsApp me offers."})
    form.refresh_from_db()
    assert form.current_version.number == 2
    assert list(form.versions.values_list("number", "consent_whatsapp")) == [
        (2, "Yes, WhatsApp me offers."), (1, "Yes, send me Diwali offers on WhatsApp."),
    ]  # fmt: skip


def test_the_builder_shows_problems_on_their_fields_and_keeps_the_input(operator_client):
    response = operator_client.post("/forms/new/", {**BUILDER, "ask_phone": "off", "consent_whatsapp": "WhatsApp me."})

    html = response.content.decode()
    assert response.status_code == 200
    assert "Ask for a phone number or an email address (or both)." in html
    assert "WhatsApp consent needs the phone number: ask for it." in html
    assert "WhatsApp me." in html
    assert not Form.objects.exists()


def test_a_viewer_may_look_but_not_build_and_the_refusal_is_audited(viewer_client, make_form):
    form = make_form()

    assert viewer_client.get("/forms/").status_code == 200
    assert viewer_client.get(f"/forms/{form.pk}/").status_code == 200
    assert viewer_client.get("/forms/new/").status_code == 403
    assert viewer_client.post(f"/forms/{form.pk}/edit/", BUILDER).status_code == 403
    assert viewer_client.get(f"/forms/{form.pk}/submissions.csv").status_code == 403
    assert AuditLog.objects.filter(action="forbidden").count() == 3
    assert Form.objects.get().name == "Newsletter sign-up"


def test_someone_without_a_role_sees_nothing(page_user, make_form):
    client = Client()
    client.force_login(page_user(None))

    assert client.get("/forms/").status_code == 403


def _submit(form, data):
    return Client().post(f"/f/{form.slug}/", {"form_token": form_token(form.current_version), **data})


def test_submissions_are_listed_and_exported_formula_safe(operator_client, make_form):
    form = make_form()
    _submit(form, {"name": '=HYPERLINK("http://evil")', "phone": "+919876543210", "consent_sms": "on"})

    page = operator_client.get(f"/forms/{form.pk}/submissions/").content.decode()
    assert "sms: given" in page

    response = operator_client.get(f"/forms/{form.pk}/submissions.csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert response["Content-Type"].startswith("text/csv")
    assert rows[0][:7] == ["submitted_at", "form_version", "contact_id", "contact_created", "name", "phone", "email"]
    assert rows[1][4] == '\'=HYPERLINK("http://evil")'
    assert rows[1][5] == "'+919876543210"  # a leading + is a formula trigger too
    assert rows[1][rows[0].index("consent_sms")] == "given"
    assert AuditLog.objects.filter(action="form.export", resource_id=str(form.pk)).exists()


def test_the_api_creates_lists_and_versions_forms_and_lists_submissions(operator_client, viewer_client, make_form):
    created = operator_client.post(
        "/api/forms/",
        {"slug": "api-form", "name": "API form", "title": "Hello", "askPhone": "required", "askEmail": "off",
         "consentSms": "Text me.", "embedOrigins": ["https://www.example.org"]},
        content_type="application/json",
    )  # fmt: skip
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["currentVersion"]["number"] == 1 and body["currentVersion"]["consentWording"] == {"sms": "Text me."}
    assert body["embedOrigins"] == ["https://www.example.org"] and body["emailDoubleOptIn"] is True

    changed = operator_client.patch(
        f"/api/forms/{body['formId']}/", {"consentSms": "Text me offers."}, content_type="application/json"
    )
    assert changed.status_code == 200 and changed.json()["currentVersion"]["number"] == 2

    bad = operator_client.post(
        "/api/forms/", {"slug": "x", "name": "x", "askPhone": "off", "askEmail": "off"}, content_type="application/json"
    )
    assert bad.status_code == 400 and "title" in bad.json()

    form = Form.objects.get(slug="api-form")
    _submit(form, {"phone": "+919876543210", "consent_sms": "on"})
    listed = viewer_client.get(f"/api/forms/{form.pk}/submissions/").json()
    assert listed["count"] == 1 and listed["results"][0]["consents"]["sms"]["outcome"] == "given"
    assert viewer_client.post("/api/forms/", {"slug": "v"}, content_type="application/json").status_code == 403


def test_the_admin_lists_forms_and_submissions_read_only(admin_client_role, make_form):
    form = make_form()
    _submit(form, {"phone": "+919876543210", "consent_sms": "on"})
    submission = FormSubmission.objects.get()

    assert admin_client_role.get("/admin/webforms/form/").status_code == 200
    assert admin_client_role.get(f"/admin/webforms/form/{form.pk}/change/").status_code == 200
    assert admin_client_role.get("/admin/webforms/formsubmission/").status_code == 200
    page = admin_client_role.get(f"/admin/webforms/formsubmission/{submission.pk}/change/").content.decode()
    assert "Save" not in page or 'name="_save"' not in page  # evidence: no save button


def test_the_admin_edit_makes_a_new_version(admin_client_role, make_form):
    form = make_form()
    data = {
        "name": form.name, "slug": form.slug, "is_published": "on", "email_double_opt_in": "on", "embed_origins": "",
        "title": "Stay in touch", "intro": "", "ask_name": "optional", "ask_phone": "optional",
        "ask_email": "optional", "attributes": "", "consent_whatsapp": "", "consent_sms": "Text me, new words.",
        "consent_email": "", "versions-TOTAL_FORMS": "1", "versions-INITIAL_FORMS": "1",
        "versions-MIN_NUM_FORMS": "0", "versions-MAX_NUM_FORMS": "1000",
        "versions-0-id": str(form.current_version.pk), "versions-0-form": str(form.pk),
    }  # fmt: skip

    response = admin_client_role.post(f"/admin/webforms/form/{form.pk}/change/", data)

    assert response.status_code == 302, response.content.decode()[:2000]
    form.refresh_from_db()
    assert form.current_version.number == 2 and form.current_version.consent_sms == "Text me, new words."


def test_each_submission_outcome_is_counted(make_form):
    form = make_form()
    with captured_logs() as captured:
        _submit(form, {"phone": "+919876543210", "consent_sms": "on"})
        _submit(form, {"phone": "12"})
        _submit(form, {"phone": "+919876543211", "website": "spam"})
        Client().post(f"/f/{form.slug}/", {"phone": "+919876543212"})

    for outcome in ("accepted", "invalid", "honeypot", "forbidden"):
        assert captured.metric_values("FormSubmissions", Outcome=outcome) == [1], outcome
    assert Contact.objects.count() == 1


def test_the_admin_creates_a_form_through_the_services(admin_client_role):
    data = {
        "name": "Admin form", "slug": "admin-form", "is_published": "on", "email_double_opt_in": "on",
        "embed_origins": "", "title": "Hello", "intro": "", "ask_name": "optional", "ask_phone": "required",
        "ask_email": "off", "attributes": "", "consent_whatsapp": "", "consent_sms": "Text me.", "consent_email": "",
        "versions-TOTAL_FORMS": "0", "versions-INITIAL_FORMS": "0",
        "versions-MIN_NUM_FORMS": "0", "versions-MAX_NUM_FORMS": "1000",
    }  # fmt: skip

    response = admin_client_role.post("/admin/webforms/form/add/", data)
    refused = admin_client_role.post("/admin/webforms/form/add/", {**data, "slug": "confirm", "ask_phone": "off"})

    assert response.status_code == 302, response.content.decode()[:2000]
    form = Form.objects.get(slug="admin-form")
    assert form.current_version.number == 1 and form.current_version.consent_sms == "Text me."
    assert AuditLog.objects.filter(action="form.create", resource_id=str(form.pk)).exists()
    assert refused.status_code == 200 and "Another form already has this address." in refused.content.decode()
    assert "SMS consent needs the phone number" in refused.content.decode()


def test_the_embed_snippet_escapes_the_title_for_the_other_sites_html(operator_client):
    operator_client.post("/forms/new/", {**BUILDER, "title": 'Offers "today"><script>x()</script>'})
    form = Form.objects.get(slug="diwali")

    html = operator_client.get(f"/forms/{form.pk}/").content.decode()

    # Escaped once for the attribute in the snippet, and once more for this page.
    assert "title=&quot;Offers &amp;quot;today&amp;quot;&amp;gt;&amp;lt;script&amp;gt;" in html
    assert "<script>x()" not in html
