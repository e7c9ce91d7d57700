"""Outbound send tasks (see messaging.services)."""
