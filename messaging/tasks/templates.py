"""Periodic WhatsApp template sync (schedule: CELERY_BEAT_SCHEDULE in settings; default queue)."""

from __future__ import annotations

from celery import shared_task

from messaging.whatsapp_templates import whatsapp_template_sync

__all__ = ["sync_whatsapp_templates"]


@shared_task(name="messaging.sync_whatsapp_templates")
def sync_whatsapp_templates() -> dict:
    return whatsapp_template_sync().as_dict()
