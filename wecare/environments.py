"""What each environment is called in AWS: the prefix of its queue, table and secret names.

Imported by settings.py and by pynamodb models at import time, so it reads nothing but its argument.
Production keeps the seeds' names (base-wecare-digital-outbound-queue, ...); staging and preview get
their own (base-wecare-digital-staging-outbound-queue, ...), so two environments never share a queue or a
table in the one AWS account. deploy/*.yaml derive the same names from their Environment parameter.
"""

from __future__ import annotations

BASE_NAME = "base-wecare-digital"
DEPLOYED_ENVIRONMENTS = ("production", "staging", "preview")


def resource_prefix(environment: str) -> str:
    """``base-wecare-digital-`` in production, ``base-wecare-digital-<environment>-`` elsewhere."""
    if environment == "production":
        return f"{BASE_NAME}-"
    return f"{BASE_NAME}-{environment or 'local'}-"


def queue_prefix(environment: str) -> str:
    """The SQS name prefix (kombu's queue_name_prefix): the resource prefix in deployed environments.

    local and test each run a private emulator, so their queues keep the bare names (outbound-queue, ...).
    """
    return resource_prefix(environment) if environment in DEPLOYED_ENVIRONMENTS else ""


def django_secret_name(environment: str) -> str:
    """The Secrets Manager name of an environment's Django secret key (deploy/data.yaml creates it)."""
    return f"{BASE_NAME}/{environment or 'local'}/django-secret-key"
