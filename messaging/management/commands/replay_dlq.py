"""python manage.py replay_dlq QUEUE [--limit N] — replay a dead-letter queue through its handler."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from accounts.services import audit_record
from messaging.dlq import MAX_REPLAY_BATCH, dlq_names, dlq_replay


class Command(BaseCommand):
    help = (
        "Replay up to --limit (at most 100) messages of a dead-letter queue (inbound-dlq, outbound-dlq, "
        "bulk-dlq) through the handler of the original. Success removes a message from the DLQ; failure "
        "returns it with its retry counter raised; after 5 failed replays it is parked for a human."
    )

    def add_arguments(self, parser):
        parser.add_argument("queue", help="DLQ name, e.g. inbound-dlq")
        parser.add_argument("--limit", type=int, default=MAX_REPLAY_BATCH, help="messages to replay (1-100)")

    def handle(self, *args, queue: str, limit: int, **options):
        if queue not in dlq_names():
            raise CommandError(f"Unknown dead-letter queue {queue!r}: use one of {', '.join(dlq_names())}.")
        if not 1 <= limit <= MAX_REPLAY_BATCH:
            raise CommandError(f"--limit must be between 1 and {MAX_REPLAY_BATCH}.")
        result = dlq_replay(queue, limit=limit)
        audit_record(user=None, action="dlq.replay", resource_type="dlq", resource_id=queue, details=result.as_dict())
        self.stdout.write(json.dumps(result.as_dict(), indent=2))
        summary = (
            f"{queue}: {result.received} received, {len(result.replayed)} replayed, {len(result.failed)} failed, "
            f"{len(result.parked)} parked, {result.duplicates} duplicates, {result.busy} being replayed elsewhere"
        )
        self.stdout.write(
            self.style.WARNING(summary) if result.failed or result.parked else self.style.SUCCESS(summary)
        )
