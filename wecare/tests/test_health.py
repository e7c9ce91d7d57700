from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_healthz_reports_every_part_ok(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"database": "ok", "broker": "ok", "aws": "ok"}


def test_healthz_names_what_is_down(client, settings, reset_aws):
    settings.MEDIA_BUCKET = "bucket-that-does-not-exist"

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json() == {"database": "ok", "broker": "ok", "aws": "down"}
