from __future__ import annotations

from django.urls import include, path
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema


def test_the_ai_suggestions_api_schema_is_valid_without_warnings():
    GENERATOR_STATS.reset()
    generator = SchemaGenerator(patterns=[path("api/", include("automation.urls"))])

    schema = generator.get_schema(request=None, public=True)

    validate_schema(schema)
    assert dict(GENERATOR_STATS._warn_cache) == {}
    assert dict(GENERATOR_STATS._error_cache) == {}
    assert set(schema["paths"]) == {
        "/api/ai/suggestions/",
        "/api/ai/suggestions/{suggestion_id}/",
        "/api/ai/suggestions/{suggestion_id}/approve/",
        "/api/ai/suggestions/{suggestion_id}/reject/",
        "/api/ai/suggestions/{suggestion_id}/feedback/",
    }
    params = {p["name"] for p in schema["paths"]["/api/ai/suggestions/"]["get"]["parameters"]}
    assert {"status", "source", "contactId", "createdAfter", "createdBefore"} <= params
