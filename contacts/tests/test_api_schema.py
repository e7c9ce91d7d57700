from __future__ import annotations

from django.urls import include, path
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema


def test_the_contacts_api_schema_is_valid_without_warnings():
    GENERATOR_STATS.reset()
    generator = SchemaGenerator(patterns=[path("api/", include("contacts.urls"))])

    schema = generator.get_schema(request=None, public=True)

    validate_schema(schema)
    assert dict(GENERATOR_STATS._warn_cache) == {}
    assert dict(GENERATOR_STATS._error_cache) == {}
    assert set(schema["paths"]) == {
        "/api/contacts/",
        "/api/contacts/{contactId}/",
        "/api/contacts/{contactId}/restore/",
        "/api/contacts/{contactId}/consent-history/",
        "/api/contacts/tags/",
        "/api/tags/",
        "/api/attributes/",
    }
    contact = schema["components"]["schemas"]["Contact"]["properties"]
    assert list(contact) == [
        "contactId",
        "name",
        "phone",
        "email",
        "optInWhatsApp",
        "optInSms",
        "optInEmail",
        "tags",
        "attributes",
        "lastInboundMessageAt",
        "createdAt",
        "updatedAt",
        "deletedAt",
    ]
    assert contact["optInSms"]["type"] == "boolean"
    params = {p["name"]: p["schema"]["type"] for p in schema["paths"]["/api/contacts/"]["get"]["parameters"]}
    assert params == {
        "optInWhatsApp": "boolean",
        "optInSms": "boolean",
        "optInEmail": "boolean",
        "page": "integer",
        "search": "string",
        "tag": "string",
        "attribute": "string",
    }
