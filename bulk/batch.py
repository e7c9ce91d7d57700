"""One chunk of a bulk job, sent as a batch: the per-message costs paid once per chunk or per group.

What a chunk of 100 costs (instead of ~13 SQL statements and 2 DynamoDB writes per message):

- **Claim**: one ``UPDATE ... RETURNING`` takes every PENDING recipient of the chunk (SENDING), only
  while the job is runnable. A SENDING recipient without a message never reached the provider.
- **Gate**: the contacts (consent, addresses, windows) are read in one query and
  `messaging.safety.safety_evaluate_many` decides for all of them in memory (the one gate's code).
  WhatsApp templates outside the window take their tier places in one update per number
  (`messaging.tier.tier_reserve_many`); places not used go back at the end.
- **Send**: BULK_SEND_THREADS sender threads call the provider; they never touch the database. The
  chunk's own thread keeps the next group of messages (one per sender) created ahead, held
  (``locked_until``) and linked to their recipients in one transaction: a held message without an
  outcome is a send whose fate a crash made unknown (never resent); a recipient without one was
  never sent (claimed again). Rate-limit tokens come in batches (messaging.ratelimit).
- **Consent stays fresh**: the chunk's thread re-reads the contacts of the recipients not yet
  sent and the job's status in one query each every FRESH_SECONDS (0.5 s) and runs the gate again on
  them; a sender checks that answer right before each provider call and, if it is older than
  STALE_SECONDS (1 s), waits for a new one. A STOP, opt-out or deletion committed while the chunk
  runs therefore stops every send not yet at the provider within 1 s; pause and cancel likewise.
- **Record**: outcomes are written in batches every FLUSH_SECONDS (0.1 s) or 2 × threads results:
  one UPDATE for the messages sent, one for their recipients, one per usage key; failures (rare)
  one by one. A SIGKILL loses at most those unwritten outcomes and the messages created ahead (up to
  3 per thread): their recipients end FAILED with OUTCOME_UNKNOWN, never resent.
"""

from __future__ import annotations

import contextvars
import logging
import os
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from bulk import quiet_hours, sending
from bulk.models import (
    OUTCOME_UNKNOWN,
    QUIET_HOURS,
    RUNNABLE_JOB_STATUSES,
    BulkJob,
    BulkJobChunk,
    BulkRecipient,
    JobStatus,
    RecipientStatus,
)
from bulk.rows import rows_update
from contacts.models import Channel, Contact
from messaging import ratelimit
from messaging.channels import ChannelError
from messaging.channels.whatsapp import DRY_RUN_MEDIA_ID
from messaging.models import Direction, MediaFile, Message, MessageStatus, ProviderAttempt
from messaging.outbound.links import links_personalise
from messaging.outbound.send import whatsapp_payload
from messaging.safety import Clearance, Refusal, contacts_for_gate, safety_evaluate_many
from messaging.tier import TierReservation, tier_reserve_many
from wecare import metrics

logger = logging.getLogger(__name__)

FRESH_SECONDS = 0.5  # consent and job status re-read this often while a chunk runs
STALE_SECONDS = 1.0  # a sender never calls the provider on an answer older than this
FLUSH_SECONDS = 0.1  # outcomes written this often (or sooner, see _drive)
MESSAGE_HOLD = timedelta(seconds=120)  # as messaging.services.CLAIM_SECONDS
# A rate-limit wait in a bulk worker: the chunk waits rather than re-queues (it holds its lease).
TOKEN_WAIT_SECONDS = 30.0


@dataclass
class Entry:
    """One claimed recipient on its way to the provider."""

    recipient_id: uuid.UUID
    contact_id: uuid.UUID
    phone: str
    request: object
    clearance: Clearance | None = None
    message_id: uuid.UUID | None = None
    message: Message | None = None
    reused_message: bool = False
    started: bool = False  # its message exists, held: from here the provider may be called
    called: bool = False  # the provider may have been called
    done: bool = False


@dataclass
class _Results:
    sent: list[tuple[Entry, str, str, bool]] = field(default_factory=list)  # (entry, provider id, request id, dry run)
    attempts: list[ProviderAttempt] = field(default_factory=list)  # one row per provider call
    failed: list[tuple[Entry, str, dict]] = field(default_factory=list)  # (entry, code, details)
    refused: list[tuple[Entry, Refusal]] = field(default_factory=list)
    unknown: list[tuple[Entry, str]] = field(default_factory=list)


_pool: ThreadPoolExecutor | None = None
_pool_pid = 0


def _executor() -> ThreadPoolExecutor:
    """This process's sender threads, kept between chunks. They never touch the database (the chunk's
    own thread does every write), so no thread opens a connection per chunk."""
    global _pool, _pool_pid
    if _pool is None or _pool_pid != os.getpid():
        _pool, _pool_pid = ThreadPoolExecutor(max_workers=2 * 32 + 2, thread_name_prefix="bulk-send"), os.getpid()
    return _pool


def _db(field_name: str, model, value):
    return model._meta.get_field(field_name).get_db_prep_value(value, connection)


def claim_chunk(
    job: BulkJob, chunk: BulkJobChunk, now: datetime
) -> list[tuple[uuid.UUID, uuid.UUID, str, uuid.UUID | None]]:
    """PENDING → SENDING for the whole chunk in one statement, while the job is runnable (recipients
    waiting out their quiet hours stay PENDING until their ``resume_at``).

    Returns (recipient id, contact id, origination number, message id or None) per recipient claimed.
    """
    recipients, jobs = BulkRecipient._meta.db_table, BulkJob._meta.db_table
    runnable = ", ".join(["%s"] * len(RUNNABLE_JOB_STATUSES))
    # Table names from the models, values as parameters: nothing from outside is spliced in.
    sql = (
        f"UPDATE {recipients} SET status = %s, claimed_at = %s, updated_at = %s "  # noqa: S608
        f"WHERE job_id = %s AND sequence >= %s AND sequence < %s AND status = %s "
        f"AND (resume_at IS NULL OR resume_at <= %s) "
        f"AND EXISTS (SELECT 1 FROM {jobs} WHERE id = %s AND status IN ({runnable})) "
        f"RETURNING id, contact_id, origination_phone_number_id, message_id"
    )
    when = _db("claimed_at", BulkRecipient, now)
    job_id = _db("id", BulkJob, job.pk)
    params = [RecipientStatus.SENDING, when, when, job_id, chunk.start_sequence, chunk.end_sequence]
    params += [RecipientStatus.PENDING, when, job_id, *[str(s) for s in RUNNABLE_JOB_STATUSES]]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    as_uuid = lambda v: v if isinstance(v, uuid.UUID) or v is None else uuid.UUID(str(v))  # noqa: E731
    return [(as_uuid(r[0]), as_uuid(r[1]), r[2] or "", as_uuid(r[3])) for r in rows]


class ChunkRun:
    """Send the chunk's PENDING recipients (see module docstring). ``stop`` ends it early (lease lost)."""

    def __init__(self, job: BulkJob, chunk: BulkJobChunk, stop: threading.Event, *, lease_lost=lambda: False):
        self.job, self.chunk, self.stop, self.lease_lost = job, chunk, stop, lease_lost
        self.lock = threading.Lock()
        self.queue: list[Entry] = []
        self.position = 0
        self.results = _Results()
        self.by_status: Counter[str] = Counter()
        self.tiers: dict[str, TierReservation] = {}
        self.refused_now: dict[uuid.UUID, Refusal] = {}  # the freshest gate answers for the remaining
        self.fresh_at = 0.0  # time.monotonic() of the last consent re-read
        self.fresh_ready = threading.Condition(self.lock)  # a consent re-read is in
        self.wanted = threading.Condition(self.lock)  # a sender waits for its message (or has a result)
        self.started_ready = threading.Condition(self.lock)  # messages were created
        self.job_status = str(job.status)
        self.error: BaseException | None = None
        self.usage_dry_run = False
        self.usage: list[Clearance] = []  # sends not yet added to MessageUsage (written every FRESH_SECONDS)
        self.usage_written = 0.0
        self.media_file = sending.job_media_file(job)  # the job's stored file (media messages, media headers)
        self.media_ids: dict[str, str] = {}  # its Meta media id per origination number

    # --- claim and gate -------------------------------------------------------------------------

    def _decide(self, entries: list[Entry], contacts: dict[str, Contact], now: datetime) -> list[Refusal | Clearance]:
        """The gate for these entries; business-initiated templates take their tier places first."""
        requests = [e.request for e in entries]
        if self.job.channel == Channel.WHATSAPP and self.job.message_type == "template":
            # Which need a place: ask the gate with the tier assumed open, then reserve those places.
            first = safety_evaluate_many(requests, now=now, contacts=contacts, tier_allows=lambda *_: True)
            wanted: dict[str, list] = {}
            for entry, result in zip(entries, first, strict=True):
                if isinstance(result, Clearance) and result.business_initiated:
                    wanted.setdefault(result.phone_number_id, []).append(entry.contact_id)
            for phone, contact_ids in wanted.items():
                self.tiers[phone] = tier_reserve_many(phone, contact_ids, now=now)
        return safety_evaluate_many(requests, now=now, contacts=contacts, tier_allows=self._tier_allows)

    def _tier_allows(self, phone: str, contact_id) -> bool:
        reservation = self.tiers.get(phone)
        return reservation is not None and reservation.allows(contact_id)

    def claim(self) -> int:
        now = timezone.now()
        claimed = claim_chunk(self.job, self.chunk, now)
        if not claimed:
            return 0
        entries = [
            Entry(
                recipient_id=rid,
                contact_id=cid,
                phone=phone,
                message_id=mid,
                reused_message=mid is not None,
                request=sending.send_request(self.job, contact_id=cid, phone_number_id=phone),
            )
            for rid, cid, phone, mid in claimed
        ]
        contacts = contacts_for_gate(e.contact_id for e in entries)
        entries = self._defer_quiet(entries, contacts, now)
        refused = []
        for entry, result in zip(entries, self._decide(entries, contacts, now), strict=True):
            if isinstance(result, Refusal):
                refused.append((entry, result))
            else:
                entry.clearance = result
                self.queue.append(entry)
        if refused:
            self._write_refused(refused)
        if self.media_file is not None:
            self._upload_media(now)
        self.fresh_at = time.monotonic()
        return len(claimed)

    def _upload_media(self, now: datetime) -> None:
        """The job's file uploaded to Meta once per number for the whole job (later chunks reuse the id).
        Meta refusing the file fails that number's recipients; a transient error retries the chunk."""
        for phone in sorted({e.clearance.phone_number_id for e in self.queue} - set(self.media_ids)):
            try:
                self.media_ids[phone] = sending.job_media_id(self.job, phone)
            except ChannelError as error:
                if not error.permanent:
                    raise
                logger.warning("bulk job %s: media upload for %s refused: %s", self.job.pk, phone, error)
                details = {**error.as_details(), "attempts": 0, "stage": "media upload"}
                failed = [e for e in self.queue if e.clearance.phone_number_id == phone]
                for entry in failed:
                    entry.done = True
                self._write_failed([(entry, error.code, details) for entry in failed], now)

    def _defer_quiet(self, entries: list[Entry], contacts: dict[str, Contact], now: datetime) -> list[Entry]:
        """Recipients in their quiet hours go back to PENDING until the window opens (never failed);
        the others go on to the gate."""
        rule = quiet_hours.rule_for_job(self.job)
        if rule is None:
            return entries
        keep: list[Entry] = []
        deferred: dict[datetime, list[uuid.UUID]] = {}
        for entry in entries:
            contact = contacts.get(str(entry.contact_id))
            at = quiet_hours.resume_at(rule, contact.phone or "", now) if contact is not None else None
            if at is None:
                keep.append(entry)
            else:
                deferred.setdefault(at, []).append(entry.recipient_id)
        for at, ids in deferred.items():
            BulkRecipient.objects.filter(pk__in=ids, status=RecipientStatus.SENDING).update(
                status=RecipientStatus.PENDING,
                resume_at=at,
                error_code=QUIET_HOURS,
                error_details=f"Quiet hours in the recipient's time zone; resumes at {at:%Y-%m-%d %H:%M} UTC.",
                updated_at=now,
            )
        if deferred:
            logger.info("bulk: %s recipient(s) of chunk %s wait for quiet hours to end", len(entries) - len(keep),
                        self.chunk.pk)  # fmt: skip
        return keep

    # --- sending --------------------------------------------------------------------------------

    def _start_group(self, group: list[Entry]) -> None:
        """Create (held) and link the messages of a group in one transaction: from here the provider may
        be called for them, and a crash leaves each with an unknown outcome rather than a resend."""
        now = timezone.now()
        held = now + MESSAGE_HOLD
        new = [e for e in group if e.message_id is None]
        for entry in new:
            entry.message_id = uuid.uuid4()
            entry.message = self._message(entry, now, held)
        with transaction.atomic():
            if new:
                links_personalise([e.message for e in new], bulk_job_id=self.job.pk)
                Message.objects.bulk_create([e.message for e in new])
                if self.media_file is not None:  # every message points at the job's one stored file
                    MediaFile.objects.bulk_create(
                        [
                            MediaFile(
                                message_id=e.message_id,
                                s3_key=self.media_file.s3_key,
                                content_type=self.media_file.content_type,
                                size=self.media_file.size,
                                filename=self.media_file.filename,
                                **self._media_id_fields(e, now),
                            )
                            for e in new
                        ]
                    )
                rows_update(
                    BulkRecipient, {e.recipient_id: {"message": e.message_id} for e in new}, same={"updated_at": now}
                )
            reused = [e for e in group if e.reused_message and e.message is None]
            if reused:
                Message.objects.filter(pk__in=[e.message_id for e in reused], status=MessageStatus.QUEUED).update(
                    locked_until=held
                )
                rows = Message.objects.in_bulk([e.message_id for e in reused])
                for entry in reused:
                    entry.message = rows.get(entry.message_id)

    def _media_id_fields(self, entry: Entry, now: datetime) -> dict:
        """The Meta media id the entry is sent with, kept on its file as a single send keeps it."""
        media_id = self.media_ids.get(entry.clearance.phone_number_id, "")
        if not media_id or media_id == DRY_RUN_MEDIA_ID:
            return {}
        return {"whatsapp_media_id": media_id, "whatsapp_media_uploaded_at": now}

    def _message(self, entry: Entry, now: datetime, held: datetime) -> Message:
        job, clearance = self.job, entry.clearance
        rendered = clearance.request or entry.request  # personalised for this contact by the gate
        return Message(
            id=entry.message_id,
            contact_id=entry.contact_id,
            channel=job.channel,
            direction=Direction.OUTBOUND,
            message_type=entry.request.message_type,
            content=clearance.content,
            template_name=job.template_name,
            template_language=job.template_language,
            template_parameters=rendered.template_parameters or [],
            subject=rendered.subject,
            html=clearance.html,
            whatsapp_payload=whatsapp_payload(rendered),
            status=MessageStatus.QUEUED,
            origination_phone_number_id=clearance.phone_number_id,
            sender_name=sending.email_sender() if job.channel == Channel.EMAIL else "",
            segments=clearance.segments,
            requested_by_id=job.created_by_id,
            locked_until=held,
            created_at=now,
            updated_at=now,
        )

    def _next(self) -> Entry | None:
        """The next entry to send; its message is created by the driver (the chunk's own thread), so
        sender threads never touch the database."""
        with self.lock:
            while True:
                while self.position < len(self.queue) and self.queue[self.position].done:
                    self.position += 1
                if self.position >= len(self.queue) or self.stop.is_set():
                    return None
                entry = self.queue[self.position]
                if entry.started:
                    self.position += 1
                    return entry
                self.wanted.notify_all()
                self.started_ready.wait(timeout=0.1)

    def _prepare(self) -> None:
        """Keep messages created and held ahead of the senders: a group of two per sender thread whenever
        fewer than one per thread is left."""
        with self.lock:
            ahead = [e for e in self.queue[self.position :] if not e.done]
            if sum(1 for e in ahead if e.started) >= self.threads:
                return
            group = [e for e in ahead if not e.started][: 2 * self.threads]
        if group:
            self._start_group(group)
            with self.lock:
                for entry in group:
                    entry.started = True
                self.started_ready.notify_all()

    def _fresh_refusal(self, entry: Entry) -> Refusal | None | bool:
        """The latest gate answer for this entry (None: go), or False when the chunk must stop.
        Waits for a re-read when the last one is older than STALE_SECONDS (fail closed)."""
        with self.lock:
            while time.monotonic() - self.fresh_at > STALE_SECONDS and not self.stop.is_set():
                self.fresh_ready.wait(timeout=0.1)
            if self.stop.is_set() or self.job_status not in RUNNABLE_JOB_STATUSES:
                return False
            return self.refused_now.get(entry.recipient_id)

    def _send(self, entry: Entry) -> None:
        if entry.message is None or entry.message.status != MessageStatus.QUEUED:
            with self.lock:  # a kept message that is no longer queued: its outcome is not ours to make
                entry.done = True
                self.results.unknown.append((entry, "the message kept from an earlier run is no longer queued"))
            return
        delivery = sending.provider_delivery(entry.message, entry.clearance, entry.request, timezone.now())
        if self.media_file is not None:
            delivery.media_file = self.media_file
            delivery.media_id = self.media_ids.get(entry.clearance.phone_number_id, "")
        buckets = sending.rate_limit_buckets(delivery)
        attempt = 0
        while True:
            attempt += 1
            ratelimit.rate_limit_acquire(buckets, max_wait=TOKEN_WAIT_SECONDS, demand=self._demand(entry))
            verdict = self._fresh_refusal(entry)
            if verdict is False:
                return  # stopped: the entry stays unsent (released at the end)
            if verdict is not None:
                with self.lock:
                    entry.done = True
                    self.results.refused.append((entry, verdict))
                return
            entry.called = True
            started_at, started = timezone.now(), time.monotonic()
            operation = {"service": "", "operation": ""}
            try:
                result, provider_id = sending.provider_call(delivery, describe=operation)
            except ChannelError as error:
                row = self._attempt_row(entry, started_at, started, operation, error=error)
                if not error.permanent and attempt <= settings.OUTBOUND_MAX_RETRIES:
                    logger.warning("bulk: message %s attempt %s failed, retrying: %s", entry.message_id, attempt, error)
                    with self.lock:
                        self.results.attempts.append(row)
                    time.sleep(sending.retry_countdown(attempt))
                    continue
                with self.lock:
                    entry.done = True
                    self.results.attempts.append(row)
                    self.results.failed.append((entry, error.code, {**error.as_details(), "attempts": attempt}))
                return
            except Exception as exc:  # not a provider answer: this recipient's outcome is unknown
                logger.exception("bulk: provider call for message %s raised", entry.message_id)
                row = self._attempt_row(entry, started_at, started, operation, error=exc)
                with self.lock:
                    entry.done = True
                    self.results.attempts.append(row)
                    self.results.unknown.append((entry, f"{type(exc).__name__}: {exc}"))
                return
            row = self._attempt_row(entry, started_at, started, operation, result=result, provider_id=provider_id)
            with self.lock:
                entry.done = True
                self.results.attempts.append(row)
                self.results.sent.append((entry, provider_id, result.request_id, result.dry_run))
            return

    def _demand(self, entry: Entry) -> int:
        """This chunk's sends from the entry's number not yet at the provider, the entry's own included:
        the most tokens its buckets can still be spent on here."""
        phone = entry.clearance.phone_number_id
        with self.lock:
            return sum(1 for e in self.queue if not e.called and not e.done and e.clearance.phone_number_id == phone)

    @staticmethod
    def _attempt_row(entry: Entry, started_at, started: float, operation: dict, **outcome) -> ProviderAttempt:
        return sending.attempt_row(
            entry.message_id,
            started_at=started_at,
            duration_ms=int((time.monotonic() - started) * 1000),
            result=outcome.get("result"),
            provider_message_id=outcome.get("provider_id", ""),
            error=outcome.get("error"),
            service=operation["service"],
            operation=operation["operation"],
        )

    def _sender(self) -> None:
        try:
            while not self.stop.is_set():
                entry = self._next()
                if entry is None:
                    return
                self._send(entry)
        except BaseException as exc:  # infrastructure (database, DynamoDB): the chunk stops and retries
            with self.lock:
                self.error = self.error or exc
            self.stop.set()

    # --- housekeeping: consent freshness and batched writes -------------------------------------

    def _refresh(self) -> None:
        """Re-read the job's status and the remaining recipients' contacts; run the gate on them again."""
        with self.lock:
            remaining = [e for e in self.queue if not e.done and not e.called]
        status = BulkJob.objects.filter(pk=self.job.pk).values_list("status", flat=True).first()
        contacts = contacts_for_gate(e.contact_id for e in remaining) if remaining else {}
        now = timezone.now()
        results = (
            safety_evaluate_many(
                [e.request for e in remaining], now=now, contacts=contacts, tier_allows=self._tier_allows
            )
            if remaining
            else []
        )
        refused = {e.recipient_id: r for e, r in zip(remaining, results, strict=True) if isinstance(r, Refusal)}
        with self.lock:
            self.job_status = str(status or JobStatus.CANCELLED)
            self.refused_now = refused
            self.fresh_at = time.monotonic()
            self.fresh_ready.notify_all()

    def _drive(self, senders: list) -> None:
        """The chunk's own thread while its senders run: messages ahead, consent re-reads, batched writes."""
        last_fresh = last_flush = time.monotonic()
        try:
            while not all(sender.done() for sender in senders):
                self._prepare()
                with self.lock:
                    self.wanted.wait(timeout=FLUSH_SECONDS / 2)
                now = time.monotonic()
                if now - last_fresh >= FRESH_SECONDS:
                    self._refresh()
                    last_fresh = time.monotonic()
                    if self.job_status not in RUNNABLE_JOB_STATUSES:
                        self.stop.set()
                if now - last_flush >= FLUSH_SECONDS or self._pending_results() >= 2 * self.threads:
                    self.flush()
                    last_flush = time.monotonic()
        except BaseException as exc:  # the database: the chunk stops (its senders too) and is retried
            with self.lock:
                self.error = self.error or exc
                self.stop.set()
                self.fresh_ready.notify_all()
                self.started_ready.notify_all()
            for sender in senders:
                sender.result()

    def _pending_results(self) -> int:
        results = self.results
        return len(results.sent) + len(results.failed) + len(results.refused) + len(results.unknown)

    def flush(self, *, final: bool = False) -> None:
        with self.lock:
            results, self.results = self.results, _Results()
        now = timezone.now()
        if self.usage and (final or time.monotonic() - self.usage_written >= FRESH_SECONDS):
            usage, self.usage = self.usage, []
            sending.usage_count(usage, channel=self.job.channel, dry_run=self.usage_dry_run, now=now)
            self.usage_written = time.monotonic()
        if results.sent:
            self._write_sent(results.sent, results.attempts, now)
        elif results.attempts:
            sending.attempts_record(results.attempts)
        if results.failed:
            self._write_failed(results.failed, now)
        if results.refused:
            self._write_refused(results.refused, now=now)
        if results.unknown:
            self._write_unknown(results.unknown, now)

    def _write_sent(
        self, sent: list[tuple[Entry, str, str, bool]], attempts: list[ProviderAttempt], now: datetime
    ) -> None:
        ids = [e.message_id for e, _, _, _ in sent]
        dry_run = any(d for _, _, _, d in sent)  # one send mode for the whole run (the provider boundary's)
        with transaction.atomic():
            if attempts:
                sending.attempts_record(attempts)
            rows_update(
                Message,
                {
                    e.message_id: {"provider_message_id": pid, "error_details": {"requestId": rid} if rid else {}}
                    for e, pid, rid, _ in sent
                },
                same={"status": MessageStatus.SENT, "dry_run": dry_run, "locked_until": None, "sent_at": now,
                      "updated_at": now},
                where={"status": MessageStatus.QUEUED},
                increment=["attempts"],
            )  # fmt: skip
            BulkRecipient.objects.filter(
                pk__in=[e.recipient_id for e, _, _, _ in sent], status=RecipientStatus.SENDING
            ).update(status=RecipientStatus.SENT, error_code="", error_details="", sent_at=now, updated_at=now)
            self.usage.extend(e.clearance for e, _, _, _ in sent)
            self.usage_dry_run = dry_run
        self.by_status[RecipientStatus.SENT] += len(sent)
        metrics.emit("MessagesSent", len(sent), channel=self.job.channel)
        sending.record_sent(self.job.channel, ids, dry_run=dry_run)
        for phone, reservation in self.tiers.items():
            reservation.settle(opened=[e.contact_id for e, _, _, _ in sent if e.phone == phone], released=[])

    def _write_failed(self, failed: list[tuple[Entry, str, dict]], now: datetime) -> None:
        outcomes = []
        for entry, code, details in failed:
            sending.message_failed(
                entry.message_id, code=code, details=details, attempts=details["attempts"], now=now, dead_letter=True
            )
            outcomes.append((entry, sending.Outcome(RecipientStatus.FAILED, code, details.get("message") or code)))
            if reservation := self.tiers.get(entry.phone):
                reservation.settle(opened=[], released=[entry.contact_id])  # failed permanently: place back
        self._write_outcomes(outcomes, now)

    def _write_unknown(self, unknown: list[tuple[Entry, str]], now: datetime) -> None:
        outcomes = []
        for entry, error in unknown:
            sending.message_failed(
                entry.message_id, code="INTERNAL_ERROR", details={"code": "INTERNAL_ERROR", "message": error[:2000]},
                attempts=1, now=now,
            )  # fmt: skip
            outcomes.append(
                (entry, sending.Outcome(RecipientStatus.FAILED, OUTCOME_UNKNOWN, f"delivery crashed: {error}"))
            )
        self._write_outcomes(outcomes, now)

    def _write_refused(self, refused: list[tuple[Entry, Refusal]], now: datetime | None = None) -> None:
        """The gate said no (at claim, or on a fresh re-read): SKIPPED with its code; a message already
        created fails with it (stage delivery); its tier place goes back."""
        now = now or timezone.now()
        outcomes = []
        for entry, refusal in refused:
            sending.refusal_record(refusal, entry.request, now=now)
            if entry.message_id is not None:
                details = {"code": str(refusal.code), "reason": refusal.reason, "stage": "delivery"}
                sending.message_failed(entry.message_id, code=str(refusal.code), details=details, attempts=0, now=now)
            outcomes.append((entry, sending.Outcome(RecipientStatus.SKIPPED, str(refusal.code), refusal.reason)))
            if reservation := self.tiers.get(entry.phone):
                reservation.settle(opened=[], released=[entry.contact_id])
        self._write_outcomes(outcomes, now)

    def _write_outcomes(self, outcomes: list[tuple[Entry, sending.Outcome]], now: datetime) -> None:
        """The recipients' outcomes in one statement, each only while it is still SENDING."""
        rows = {
            entry.recipient_id: {
                "status": outcome.status,
                "error_code": outcome.code[:64],
                "error_details": outcome.details[:10000],
                "sent_at": now if outcome.status == RecipientStatus.SENT else None,
            }
            for entry, outcome in outcomes
        }
        changed = set(
            rows_update(BulkRecipient, rows, same={"updated_at": now}, where={"status": RecipientStatus.SENDING})
        )
        for entry, outcome in outcomes:
            if entry.recipient_id in changed:
                self.by_status[outcome.status] += 1

    # --- the run --------------------------------------------------------------------------------

    @property
    def threads(self) -> int:
        return max(1, min(settings.BULK_SEND_THREADS, len(self.queue)))

    def run(self) -> tuple[dict[str, int], BaseException | None]:
        self.claim()
        if self.queue:
            # Each sender runs in a copy of the log context: its lines carry the task, job and chunk ids.
            senders = [_executor().submit(contextvars.copy_context().run, self._sender) for _ in range(self.threads)]
            self._drive(senders)
            for sender in senders:
                sender.result()
        if self.error is None:
            self.flush(final=True)
            self._release_unsent()
        for reservation in self.tiers.values():
            reservation.release_unused()
        return dict(self.by_status), self.error

    def _release_unsent(self) -> None:
        """Recipients this run claimed and did not send (paused, cancelled, lease lost)."""
        unsent = [e for e in self.queue if not e.done and not e.called]
        if not unsent or self.lease_lost():
            return  # nothing left, or another worker owns the chunk now: it settles them
        now = timezone.now()
        cancelled = self.job_status == JobStatus.CANCELLED
        with_message = [e.message_id for e in unsent if e.message_id is not None]
        if with_message:
            if cancelled:
                # Created ahead, never handed to the provider: the cancelled recipient has no message.
                BulkRecipient.objects.filter(pk__in=[e.recipient_id for e in unsent]).update(message=None)
                Message.objects.filter(pk__in=with_message, status=MessageStatus.QUEUED, attempts=0).delete()
            else:
                Message.objects.filter(pk__in=with_message).update(locked_until=None, updated_at=now)
        recipients = BulkRecipient.objects.filter(
            pk__in=[e.recipient_id for e in unsent], status=RecipientStatus.SENDING
        )
        if cancelled:
            recipients.update(
                status=RecipientStatus.CANCELLED, error_details="Job cancelled before this recipient was sent.",
                updated_at=now,
            )  # fmt: skip
        else:
            recipients.update(status=RecipientStatus.PENDING, updated_at=now)
