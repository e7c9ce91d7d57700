"""wecare.metrics: EMF lines that follow the specification, the catalogue, and the API counters."""

from __future__ import annotations

import pytest

from wecare import metrics
from wecare.tests.emf_spec import assert_valid_emf
from wecare.tests.log_capture import captured_logs

# Dimension -> (keyword at the call site, example value).
EXAMPLE_DIMENSIONS = {
    "Channel": ("channel", "whatsapp"),
    "Reason": ("reason", "OPT_IN_REQUIRED"),
    "Queue": ("queue", "outbound-dlq"),
    "PhoneNumberId": ("phone_number_id", "phone-number-id-1"),
    "Bucket": ("bucket", "whatsapp-phone"),
    "Outcome": ("outcome", "accepted"),
}


@pytest.mark.parametrize("name", sorted(metrics.CATALOGUE))
def test_every_metric_of_the_catalogue_is_a_valid_emf_line_with_its_dimensions(name):
    unit, names = metrics.CATALOGUE[name]

    with captured_logs() as captured:
        metrics.emit(name, 3, **dict(EXAMPLE_DIMENSIONS[n] for n in names))

    (line,) = captured.emf()
    assert_valid_emf(line)
    directive = line["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "WECARE.DIGITAL"
    assert directive["Dimensions"] == [["Environment", *names]]
    assert directive["Metrics"] == [{"Name": name, "Unit": unit}]
    assert line[name] == 3 and line["Environment"] == "test"


def test_a_metric_outside_the_catalogue_or_with_a_wrong_dimension_is_refused():
    with pytest.raises(ValueError, match="unknown metric"):
        metrics.emit("MessagesSentt", channel="sms")
    with pytest.raises(ValueError, match="no dimension"):
        metrics.emit("MessagesSent", queue="sms")
    with pytest.raises(ValueError, match="needs dimension"):
        metrics.emit("MessagesSent")


def test_timed_emits_the_duration_in_milliseconds_also_when_the_block_raises():
    with captured_logs() as captured, pytest.raises(RuntimeError), metrics.timed("ProviderLatency", channel="sms"):
        raise RuntimeError("provider down")

    (value,) = captured.metric_values("ProviderLatency", Channel="sms")
    assert 0 <= value < 1000


@pytest.mark.django_db
def test_requests_are_counted_and_a_server_error_counts_as_api_5xx(client, monkeypatch):
    def broken():
        raise RuntimeError("database exploded")

    with captured_logs() as captured:
        client.get("/api/schema/")
        client.get("/healthz/live")  # load balancer checks are not API traffic
        client.raise_request_exception = False
        monkeypatch.setattr("wecare.views.render_page", lambda *a, **k: broken())
        client.force_login(_admin())
        response = client.get("/")

    assert response.status_code == 500
    assert len(captured.metric_values("ApiRequests")) == 2
    assert captured.metric_values("Api5xx") == [1]
    (error,) = [r for r in captured.records() if r["message"].startswith("unhandled exception")]
    assert error["errorType"] == "RuntimeError" and "database exploded" in error["stackTrace"]
    assert error["requestId"] and error["userId"]


def _admin():
    from accounts.services import user_create

    return user_create(email="metrics-admin@example.com", role="Admin")
