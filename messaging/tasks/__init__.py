"""Celery tasks of the messaging app: outbound sends, inbound processing and template sync."""

from messaging.tasks.inbound import *  # noqa: F403
from messaging.tasks.outbound import *  # noqa: F403
from messaging.tasks.templates import *  # noqa: F403
