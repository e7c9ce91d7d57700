"""Bring WhatsAppTemplate rows in step with the templates of every linked WABA."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from messaging.channels import ChannelError
from messaging.whatsapp_templates import whatsapp_template_sync


class Command(BaseCommand):
    help = (
        "Sync WhatsApp message templates from AWS End User Messaging Social (ListLinkedWhatsAppBusinessAccounts, "
        "ListWhatsAppMessageTemplates, GetWhatsAppMessageTemplate). Also runs every 30 minutes from Celery beat."
    )

    def handle(self, *args, **options):
        try:
            result = whatsapp_template_sync()
        except ChannelError as exc:
            raise CommandError(f"Template sync failed: {exc}") from exc
        self.stdout.write(
            f"WABAs: {result.wabas}, templates created: {result.created}, updated: {result.updated}, "
            f"disabled: {result.disabled}"
        )
        for error in result.errors:
            self.stderr.write(f"error: {error}")
        if result.errors:
            raise CommandError(f"{len(result.errors)} template(s) could not be synced.")
        self.stdout.write(self.style.SUCCESS("Templates in sync."))
