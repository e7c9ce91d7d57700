"""Celery tasks of the messaging app: outbound sends and inbound processing, one module each."""

from messaging.tasks.inbound import *  # noqa: F403
from messaging.tasks.outbound import *  # noqa: F403
