"""Benchmark: SMS at 5/s and email at 10/s held within 2 % by 5 worker processes sharing the buckets.

    scripts/with-services.sh .venv/bin/python bench/channel_rates.py [--sms 250] [--email 500]
        [--workers 5] [--concurrency 4] [--latency 0.05]

What runs: ``POST /api/messages/`` (in process, as an Operator) queues N SMS and M emails, interleaved,
for opted-in contacts; then ``--workers`` separate ``celery worker`` processes on the outbound queue
(SQS on the run's moto_server) deliver them at the same time, each process taking tokens from the
shared DynamoDB buckets ``sms`` (RATE_LIMIT_SMS, 5/s) and ``email`` (RATE_LIMIT_EMAIL, 10/s) in its
own batches. SMS go to the 50 ms fake of EUM SMS (localdev/fake_socialmessaging.py, SendTextMessage),
which records when each call arrived; emails go to SES v2 on moto, timed by their ProviderAttempt
rows (started right before the call).

Per channel it prints the rate from first to last provider call, its ratio to the limit (target:
0.98 to 1.02) and the busiest second, and ends with
``RESULT channel_rates sms_rate=... sms_ratio=... email_rate=... email_ratio=... held=yes|no ...``.
The workers run the production configuration against loopback emulators only, as in
bench/outbound_send.py (whose helpers this reuses, refusal of non-loopback endpoints included).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.contacts_common import drop_database, use_fresh_database  # noqa: E402
from bench.outbound_send import (  # noqa: E402
    _refuse_unless_loopback,
    _start_workers,
    _stop_workers,
    _worker_env,
    bench_queue_prefix,
    tree_cpu_seconds,
)
from localdev.fake_socialmessaging import FakeSocialMessaging, busiest_second  # noqa: E402

DATABASE = "wecare_bench_channel_rates"
TOLERANCE = 0.02  # the target: each channel's rate within 2 % of its limit


def _prepare(sms: int, email: int) -> list[str]:
    """Opted-in contacts, each sent one SMS or one email through POST /api/messages/, interleaved so
    that both channels are waiting in the queue from the start."""
    from django.test import Client

    from accounts.services import user_create
    from contacts.models import Contact

    stamp = uuid.uuid4().hex[:6]
    count = sms + email
    contacts = Contact.objects.bulk_create(
        [
            Contact(
                name=f"Rates {i}",
                phone=f"+9198{int(stamp, 16) % 100:02d}{i:06d}",
                email=f"rates-{stamp}-{i}@example.com",
                opt_in_sms=True,
                opt_in_email=True,
            )
            for i in range(count)
        ]
    )
    # An even mix: the k-th of n messages of a channel goes at k / (n + 1) of the queue.
    slots = [(k / (sms + 1), "sms") for k in range(1, sms + 1)] + [
        (k / (email + 1), "email") for k in range(1, email + 1)
    ]
    channels = [channel for _, channel in sorted(slots)]
    client = Client()
    client.force_login(user_create(email=f"rates-bench-{stamp}@example.com", role="Operator"))
    ids = []
    for contact, channel in zip(contacts, channels, strict=True):
        body = {"contactId": str(contact.pk), "channel": channel, "text": f"Hello {contact.name}"}
        if channel == "email":
            body["subject"] = "Your appointment"
        response = client.post("/api/messages/", body, content_type="application/json")
        if response.status_code != 202:
            sys.exit(f"POST /api/messages/ answered {response.status_code}: {response.content[:300]!r}")
        ids.append(response.json()["messageId"])
    return ids


def _rate(times: list[float]) -> tuple[float, float]:
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    return ((len(times) - 1) / span if span else float("nan")), span


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sms", type=int, default=250, help="SMS to send (50 s at 5/s)")
    parser.add_argument("--email", type=int, default=500, help="emails to send (50 s at 10/s)")
    parser.add_argument("--workers", type=int, default=5, help="worker processes")
    parser.add_argument("--concurrency", type=int, default=4, help="threads per worker process")
    parser.add_argument("--latency", type=float, default=0.05, help="fake SMS provider latency, seconds")
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    _refuse_unless_loopback(dict(os.environ))
    (ROOT / ".run").mkdir(exist_ok=True)
    bench_queue_prefix()
    server = use_fresh_database(DATABASE)
    try:
        from django.conf import settings
        from django.core.management import call_command

        from messaging.models import Message, ProviderAttempt
        from messaging.ratelimit import RateLimitTracker, email_buckets, sms_buckets
        from wecare import aws

        call_command("bootstrap_aws", verbosity=0, stdout=open(os.devnull, "w"))  # noqa: SIM115
        secrets = aws.client("secretsmanager")
        with contextlib.suppress(secrets.exceptions.ResourceExistsException):
            secrets.create_secret(Name=settings.SECRET_NAME_DJANGO_SECRET_KEY, SecretString=uuid.uuid4().hex * 2)
        for bucket in sms_buckets() + email_buckets():
            with contextlib.suppress(RateLimitTracker.DoesNotExist):
                RateLimitTracker.get(bucket.key).delete()
        limits = {"sms": settings.RATE_LIMIT_SMS, "email": settings.RATE_LIMIT_EMAIL}

        with FakeSocialMessaging(latency=args.latency) as fake:
            print(
                f"fake EUM SMS on {fake.url} ({args.latency * 1000:.0f} ms per call), SES v2 on moto; "
                f"{args.workers} worker processes x {args.concurrency} threads; {os.cpu_count()} CPU(s); "
                f"limits sms {limits['sms']:g}/s, email {limits['email']:g}/s"
            )
            started = time.monotonic()
            ids = _prepare(args.sms, args.email)
            print(f"queued {args.sms} SMS + {args.email} emails in {time.monotonic() - started:.1f}s", flush=True)
            env = _worker_env(
                fake.url,
                {
                    "AWS_ENDPOINT_URL_PINPOINT_SMS_VOICE_V2": fake.url,
                    "RATE_LIMIT_SMS": str(limits["sms"]),
                    "RATE_LIMIT_EMAIL": str(limits["email"]),
                },
            )
            _refuse_unless_loopback(env)
            workers = _start_workers(args.workers, args.concurrency, "threads", env, settings.QUEUE_OUTBOUND)
            time.sleep(5)  # their start-up is not part of the CPU measured
            pids = [process.pid for process, _log in workers]
            cpu_before = tree_cpu_seconds(pids)
            measured_from = time.time()  # CPU is counted from here, so only the sends from here count
            deadline = time.monotonic() + args.timeout
            try:
                while time.monotonic() < deadline:
                    done = Message.objects.filter(pk__in=ids).exclude(status="queued").count()
                    if done == len(ids):
                        break
                    for process, _log in workers:
                        if process.poll() is not None:
                            sys.exit(f"a worker exited early (code {process.returncode}): see .run/bench-outbound-*")
                    time.sleep(0.5)
                else:
                    sys.exit(f"timed out: {done} of {len(ids)} messages left the queue")
                worker_cpu = tree_cpu_seconds(pids) - cpu_before
            finally:
                _stop_workers(workers)
            sms_times = sorted(call.at for call in fake.calls("SendTextMessage"))

        email_times = sorted(
            at.timestamp()
            for at in ProviderAttempt.objects.filter(
                message_id__in=ids, operation="SendEmail", outcome=ProviderAttempt.Outcome.SUCCEEDED
            ).values_list("started_at", flat=True)
        )
        statuses: dict[str, int] = {}
        for status in Message.objects.filter(pk__in=ids).values_list("status", flat=True):
            statuses[status] = statuses.get(status, 0) + 1
        load = os.getloadavg()
        cpu_ms = 1000 * worker_cpu / max(1, sum(1 for at in sms_times + email_times if at >= measured_from))
        print(f"\nmessages: {statuses}; worker CPU {cpu_ms:.2f} ms/message")
        fields, held = [], True
        for channel, times in (("sms", sms_times), ("email", email_times)):
            rate, span = _rate(times)
            ratio = rate / limits[channel]
            busiest = busiest_second(times)
            ok = abs(ratio - 1) <= TOLERANCE
            held &= ok
            print(
                f"  {channel:5} {len(times)} provider calls in {span:.1f}s = {rate:.3f}/s; "
                f"limit {limits[channel]:g}/s, "
                f"ratio {ratio:.4f} ({'within' if ok else 'OUTSIDE'} 2 %); busiest second {busiest}"
            )
            fields += [
                f"{channel}_rate={rate:.3f}/s",
                f"{channel}_ratio={ratio:.4f}",
                f"{channel}_max_second={busiest}",
            ]
        fields += [
            f"held={'yes' if held else 'no'}",
            f"workers={args.workers}",
            f"worker_cpu_ms={cpu_ms:.2f}",
            f"load={load[0]:.1f}",
        ]
        print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        print(f"RESULT channel_rates {' '.join(fields)}")
    finally:
        drop_database(server, DATABASE)


if __name__ == "__main__":
    main()
