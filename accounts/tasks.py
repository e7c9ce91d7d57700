"""Periodic account tasks (scheduled in CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

from celery import shared_task

from accounts.services import users_roles_recheck


@shared_task(name="accounts.roles_recheck")
def roles_recheck() -> dict[str, int]:
    """Roles follow Cognito between sign-ins: someone removed or demoted there loses access here."""
    return users_roles_recheck()
