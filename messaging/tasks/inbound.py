"""Inbound event processing tasks (see messaging.inbound)."""
