"""Benchmark: outbound WhatsApp sends through the real task path, against a 50 ms fake of EUM Social.

    scripts/with-services.sh .venv/bin/python bench/outbound_send.py [--messages 2000] [--workers 2]
        [--concurrency 16] [--pool threads] [--latency 0.05] [--runs limited,lifted] [--limit 80]

What runs: ``POST /api/messages/`` (in process: the DRF view, message_send with the gate, the row, the
Celery task on SQS) for N contacts, then real
``celery worker`` processes on the outbound queue (SQS on the run's moto_server) deliver them:
``message_deliver`` re-runs the gate, takes tokens from the DynamoDB buckets (moto), calls
SendWhatsAppMessage with boto3 over HTTP, and records the result in PostgreSQL. The provider is
localdev/fake_socialmessaging.py (50 ms per call, threaded), which records when each call arrived:
the rate is measured where a provider would see it.

Two runs:
- ``limited``: the configured limits (RATE_LIMIT_WHATSAPP_PER_PHONE, default 80/s; every message
  goes from the first allowlisted number, so that bucket is the one that binds). Prints messages/s
  and the ratio to the limit (it must not exceed 1), and the busiest second the fake saw
  (it must not exceed the bucket's capacity + rate).
- ``lifted``: the per-number limit at 100 000/s (the account limit ten times that): the pipeline's own
  ceiling on this machine.

How the workers may make real provider calls outside production: they cannot, by design — settings
refuse SEND_MODE=LIVE unless ENVIRONMENT=production, and the gate has no "it is only a fake"
exception, because such an exception would be one more way to send for real by mistake. So the
workers run the production configuration itself (ENVIRONMENT=production, SEND_MODE=LIVE, the Django
secret key read from Secrets Manager) with every AWS endpoint on loopback emulators: moto_server
for SQS, DynamoDB, S3 and Secrets Manager, the fake for EUM Social. Before it starts a worker the
benchmark checks that AWS_ENDPOINT_URL and every AWS_ENDPOINT_URL_<SERVICE> are loopback URLs and
that the credentials are the emulator's ("testing"), and refuses otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.contacts_common import drop_database, use_fresh_database  # noqa: E402
from localdev.fake_socialmessaging import FakeSocialMessaging, busiest_second  # noqa: E402

DATABASE = "wecare_bench_outbound"
LIFTED = "100000"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _refuse_unless_loopback(env: dict[str, str]) -> None:
    """The workers run as production: everything they can reach must be a local emulator."""
    endpoints = {k: v for k, v in env.items() if k == "AWS_ENDPOINT_URL" or k.startswith("AWS_ENDPOINT_URL_")}
    if "AWS_ENDPOINT_URL" not in endpoints:
        sys.exit("AWS_ENDPOINT_URL is not set: run through scripts/with-services.sh (moto_server on loopback).")
    for name, url in endpoints.items():
        if urlparse(url).hostname not in LOOPBACK:
            sys.exit(f"{name}={url} is not a loopback address: this benchmark runs workers as production.")
    if env.get("AWS_ACCESS_KEY_ID") != "testing":
        sys.exit("AWS_ACCESS_KEY_ID is not the emulator's 'testing': refusing to run workers as production.")


def bench_queue_prefix() -> None:
    """Call before Django is set up. The workers run as production, whose queue, table and secret names
    differ from this process's: the benchmark names its queues itself (CELERY_QUEUE_PREFIX, inherited by
    the workers) and `_worker_env` hands them this process's table prefix and secret name."""
    os.environ.setdefault("CELERY_QUEUE_PREFIX", "bench-")


def _worker_env(fake_url: str, rates: dict[str, str]) -> dict[str, str]:
    from django.conf import settings

    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SECRET_KEY"}
    env.update(
        {
            "CELERY_QUEUE_PREFIX": settings.CELERY_BROKER_TRANSPORT_OPTIONS["queue_name_prefix"],
            "DYNAMODB_TABLE_PREFIX": settings.DYNAMODB_TABLE_PREFIX,
            "SECRET_NAME_DJANGO_SECRET_KEY": settings.SECRET_NAME_DJANGO_SECRET_KEY,
            # The production configuration, against loopback emulators only (see the module docstring).
            "ENVIRONMENT": "production",
            "SEND_MODE": "LIVE",
            "ALLOWED_HOSTS": "localhost",
            "CLOUDWATCH_LOGS_ENABLED": "false",
            "AWS_ENDPOINT_URL_SOCIALMESSAGING": fake_url,
            "LOG_LEVEL": "WARNING",
            # Production refuses to start without Cognito sign-in; a worker never signs anyone in.
            "OIDC_CLIENT_ID": "bench-worker-no-sign-in",
            "CELERY_POLLING_INTERVAL": "0.1",
            **rates,
        }
    )
    _refuse_unless_loopback(env)
    return env


def _start_workers(count: int, concurrency: int, pool: str, env: dict[str, str], queue: str) -> list:
    workers = []
    loglevel = os.environ.get("BENCH_WORKER_LOGLEVEL", "WARNING")
    for index in range(count):
        log = open(ROOT / ".run" / f"bench-outbound-worker-{index}.log", "w")  # noqa: SIM115
        process = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "wecare", "worker", "-Q", queue, "-P", pool,
                "-c", str(concurrency), "-n", f"bench{index}@%h", f"--loglevel={loglevel}",
                "--without-heartbeat", "--without-mingle", "--without-gossip",
            ],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        workers.append((process, log))
    return workers


def _stop_workers(workers: list) -> None:
    for process, _log in workers:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process, log in workers:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _prepare(count: int) -> list:
    """N opted-in contacts inside the service window, each sent one text by POST /api/messages/ (the DRF
    view, its serializer, message_send and the task queued on commit; in process, as an Operator)."""
    from django.test import Client
    from django.utils import timezone

    from accounts.services import user_create
    from contacts.models import Contact

    stamp = uuid.uuid4().hex[:6]
    now = timezone.now()
    contacts = Contact.objects.bulk_create(
        [
            Contact(
                name=f"Bench {i}",
                phone=f"+9199{int(stamp, 16) % 100:02d}{i:06d}",
                opt_in_whatsapp=True,
                last_inbound_message_at=now - timedelta(minutes=5),
            )
            for i in range(count)
        ]
    )
    client = Client()
    client.force_login(user_create(email=f"outbound-bench-{stamp}@example.com", role="Operator"))
    ids = []
    for contact in contacts:
        response = client.post(
            "/api/messages/",
            {"contactId": str(contact.pk), "channel": "whatsapp", "text": f"Hello {contact.name}"},
            content_type="application/json",
        )
        if response.status_code != 202:
            sys.exit(f"POST /api/messages/ answered {response.status_code}: {response.content[:300]!r}")
        ids.append(response.json()["messageId"])
    return ids


def tree_cpu_seconds(root_pids: list[int]) -> float:
    """CPU time used so far by these processes and their children, from /proc (measured while they run,
    so the caller can leave their start-up out)."""
    ticks = os.sysconf("SC_CLK_TCK")
    stats = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(pid)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks)
    wanted = set(root_pids)
    while children := {pid for pid, (ppid, _) in stats.items() if ppid in wanted} - wanted:
        wanted |= children
    return sum(stats[pid][1] for pid in wanted if pid in stats)


def _reset_buckets() -> None:
    from django.conf import settings

    from messaging.ratelimit import RateLimitTracker, whatsapp_send_buckets

    for bucket in whatsapp_send_buckets(settings.WHATSAPP_PHONE_NUMBER_IDS[0]):
        with contextlib.suppress(RateLimitTracker.DoesNotExist):
            RateLimitTracker.get(bucket.key).delete()


def run(name: str, args, fake: FakeSocialMessaging, rates: dict[str, str], limit: float | None) -> dict:
    from django.conf import settings

    from messaging.models import Message

    _reset_buckets()
    fake.server.reset()
    print(f"\n[{name}] queueing {args.messages} messages through POST /api/messages/ ...", flush=True)
    started = time.monotonic()
    ids = _prepare(args.messages)
    print(f"[{name}] queued in {time.monotonic() - started:.1f}s; starting {args.workers} worker(s)", flush=True)

    # -Q takes the name from settings; kombu adds queue_name_prefix towards SQS.
    workers = _start_workers(
        args.workers, args.concurrency, args.pool, _worker_env(fake.url, rates), settings.QUEUE_OUTBOUND
    )
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
                    sys.exit(f"a worker exited early (code {process.returncode}): see .run/bench-outbound-worker-*.log")
            time.sleep(0.5)
        else:
            sys.exit(f"[{name}] timed out: {done} of {len(ids)} messages left the queue")
        worker_cpu = tree_cpu_seconds(pids) - cpu_before
    finally:
        _stop_workers(workers)

    statuses = dict.fromkeys(["sent", "failed"], 0)
    for status in Message.objects.filter(pk__in=ids).values_list("status", flat=True):
        statuses[status] = statuses.get(status, 0) + 1
    arrivals = sorted(call.at for call in fake.sends)
    span = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else 0.0
    rate = (len(arrivals) - 1) / span if span else float("nan")
    result = {
        "run": name,
        "sent": statuses.get("sent", 0),
        "failed": statuses.get("failed", 0),
        "provider_calls": len(arrivals),
        "seconds": span,
        "rate": rate,
        "busiest_second": busiest_second(arrivals),
        "limit": limit,
        "cpu_ms_workers": 1000 * worker_cpu / max(1, sum(1 for at in arrivals if at >= measured_from)),
        "load": os.getloadavg()[0],
    }
    line = f"[{name}] {result['sent']} sent, {result['failed']} failed; the fake saw {len(arrivals)} sends in "
    line += f"{span:.2f}s = {rate:.1f} messages/s; busiest second {result['busiest_second']}"
    if limit:
        line += f"; limit {limit:.0f}/s, ratio {rate / limit:.3f}"
    line += f"; worker CPU {result['cpu_ms_workers']:.2f} ms/message (target <= 4); load {result['load']:.1f}"
    print(line, flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--concurrency", type=int, default=16, help="threads (or processes) per worker")
    parser.add_argument("--pool", default="threads", choices=["threads", "prefork"])
    parser.add_argument("--latency", type=float, default=0.05, help="fake provider latency, seconds")
    parser.add_argument("--runs", default="limited,lifted")
    parser.add_argument(
        "--limit", type=float, default=None, help="per-number limit of the limited run (default: the configured one)"
    )
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    _refuse_unless_loopback(dict(os.environ))
    (ROOT / ".run").mkdir(exist_ok=True)
    bench_queue_prefix()
    server = use_fresh_database(DATABASE)
    try:
        from django.conf import settings
        from django.core.management import call_command

        from wecare import aws

        call_command("bootstrap_aws", verbosity=0, stdout=open(os.devnull, "w"))  # noqa: SIM115
        secrets = aws.client("secretsmanager")
        with contextlib.suppress(secrets.exceptions.ResourceExistsException):
            secrets.create_secret(Name=settings.SECRET_NAME_DJANGO_SECRET_KEY, SecretString=uuid.uuid4().hex * 2)

        per_phone = args.limit or settings.RATE_LIMIT_WHATSAPP_PER_PHONE
        configured = {
            "RATE_LIMIT_WHATSAPP_PER_PHONE": str(per_phone),
            "RATE_LIMIT_EUM_SOCIAL_ACCOUNT": str(settings.RATE_LIMIT_EUM_SOCIAL_ACCOUNT),
        }
        # Lifted: the per-number limit far above anything reachable; the account limit ten times higher
        # still, so (as with the defaults) only the per-number bucket is consulted.
        lifted = {"RATE_LIMIT_WHATSAPP_PER_PHONE": LIFTED, "RATE_LIMIT_EUM_SOCIAL_ACCOUNT": LIFTED + "0"}
        with FakeSocialMessaging(latency=args.latency) as fake:
            print(
                f"fake EUM Social on {fake.url} ({args.latency * 1000:.0f} ms per call); {args.workers} worker(s) x "
                f"{args.concurrency} {args.pool}; {os.cpu_count()} CPU(s)"
            )
            results = []
            for name in args.runs.split(","):
                if name == "limited":
                    results.append(run(name, args, fake, configured, per_phone))
                elif name == "lifted":
                    results.append(run(name, args, fake, lifted, None))
                else:
                    sys.exit(f"unknown run {name!r}: use limited and/or lifted")
        print("\nsummary")
        for r in results:
            ratio = f", {r['rate'] / r['limit']:.3f} of the {r['limit']:.0f}/s limit" if r["limit"] else " (ceiling)"
            print(f"  {r['run']:8} {r['rate']:7.1f} messages/s{ratio}; busiest second {r['busiest_second']}")
        by_run = {r["run"]: r for r in results}
        fields = []
        if limited := by_run.get("limited"):
            fields += [
                f"rate={limited['rate']:.1f}/s",
                f"ratio={limited['rate'] / limited['limit']:.3f}",
                f"max_second_ratio={limited['busiest_second'] / limited['limit']:.3f}",
            ]
        if lifted_run := by_run.get("lifted"):
            fields.append(f"lifted={lifted_run['rate']:.0f}/s")
        fields += [
            f"worker_cpu_ms={max(r['cpu_ms_workers'] for r in results):.2f}",
            f"load={max(r['load'] for r in results):.1f}",
        ]
        print(f"RESULT outbound {' '.join(fields)}")
    finally:
        drop_database(server, DATABASE)


if __name__ == "__main__":
    main()
