from __future__ import annotations

from django.urls import include, path
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema


def test_the_bulk_api_schema_is_valid_without_warnings():
    GENERATOR_STATS.reset()
    generator = SchemaGenerator(patterns=[path("api/", include("bulk.urls"))])

    schema = generator.get_schema(request=None, public=True)

    validate_schema(schema)
    assert dict(GENERATOR_STATS._warn_cache) == {}
    assert dict(GENERATOR_STATS._error_cache) == {}
    assert set(schema["paths"]) == {
        "/api/bulk/jobs/",
        "/api/bulk/jobs/{jobId}/",
        "/api/bulk/jobs/{jobId}/confirm/",
        "/api/bulk/jobs/{jobId}/pause/",
        "/api/bulk/jobs/{jobId}/resume/",
        "/api/bulk/jobs/{jobId}/cancel/",
        "/api/bulk/jobs/{jobId}/schedule/",
        "/api/bulk/jobs/{jobId}/retry-failed/",
        "/api/bulk/jobs/{jobId}/report/",
        "/api/bulk/jobs/{jobId}/recipients/",
    }
    job = schema["components"]["schemas"]["BulkJob"]["properties"]
    assert {"jobId", "status", "progress", "preflight", "createdBy"} <= set(job)
