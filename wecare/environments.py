"""What each environment is called in AWS: the prefix of its queue, table and secret names.

Imported by settings.py and by pynamodb models at import time, so it reads nothing but its argument.
Production keeps the seeds' names (base-wecare-digital-outbound-queue, ...); every other environment
gets its own (base-wecare-digital-staging-outbound-queue, ...), so two environments never share a queue
or a table. deploy/*.yaml derive the same names from their Environment parameter.
"""

from __future__ import annotations

BASE_NAME = "base-wecare-digital"
DEPLOYED_ENVIRONMENTS = ("production", "staging", "preview")


def resource_prefix(environment: str) -> str:
    """``base-wecare-digital-`` in production, ``base-wecare-digital-<environment>-`` elsewhere."""
    if environment == "production":
        return f"{BASE_NAME}-"
    return f"{BASE_NAME}-{environment or 'local'}-"


def django_secret_name(environment: str) -> str:
    """The Secrets Manager name of an environment's Django secret key (deploy/data.yaml creates it)."""
    return f"{BASE_NAME}/{environment or 'local'}/django-secret-key"
