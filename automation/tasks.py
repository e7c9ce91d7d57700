"""Celery tasks of the AI suggestions, on their own queue (QUEUE_AI)."""

from __future__ import annotations

from celery import shared_task

from automation import services


@shared_task(name="automation.tasks.suggest_reply", acks_late=True, ignore_result=True)
def suggest_reply(message_id: str) -> str:
    """Draft a suggestion for one inbound message. Failures are stored, never raised at the queue:
    a retry would only repeat a Bedrock call that already had its retries."""
    suggestion = services.suggestion_generate(message_id)
    return str(suggestion.pk) if suggestion else ""


@shared_task(name="automation.tasks.suggestions_sweep", ignore_result=True)
def suggestions_sweep() -> dict[str, int]:
    return services.suggestions_sweep()
