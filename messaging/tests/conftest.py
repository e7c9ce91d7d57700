"""Fixtures shared by the messaging tests. The inbound side's live in inbound_fixtures."""

from messaging.tests.inbound_fixtures import clean_claims, empty_queues, sns_setup  # noqa: F401
