"""Benchmark: inbound WhatsApp status notifications, from signed SNS POSTs to applied statuses.

    scripts/with-services.sh .venv/bin/python bench/inbound_webhook.py [--rate 550] [--duration 60]
        [--connections 16] [--workers 2] [--threads 4] [--celery 2] [--burst 0]

What runs, all on this machine: gunicorn (gthread) serving the real endpoint, which verifies each
signature (RSA, SHA1 or SHA256 — half of each) and stores the notification in PostgreSQL (one
INSERT: the outbox); the relay loop (`relay_inbound_events`) handing stored events to the inbound
queue on SQS (the run's moto_server) with SendMessageBatch; and Celery workers on that queue
applying the statuses in batches to outbound messages created beforehand. The load is sent-,
delivered- and read-statuses (three per message, as every WhatsApp message we send comes back),
paced at --rate notifications/s by keep-alive Python clients for --duration seconds. The
certificate comes from a file through SNS_CERT_FETCHER (``fetch_bench_certificate``), so nothing
leaves the machine. ``--burst N`` first sends unpaced for N seconds (the endpoint's ceiling).

Prints accepted notifications/s and latency percentiles (target: >= 500/s, p99 < 100 ms), the
statuses applied per second by the workers (target >= 500/s) and the backlog (events stored but
not processed) every 5 s: it must stay flat, not grow, over the run. Checks every answer was 200,
every notification stored once and every message ended "read". Ends with a RESULT line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
DATABASE = f"wecare_bench_inbound_{os.getpid()}"  # its own: two runs on one cluster never collide
TOPIC = "arn:aws:sns:us-east-1:809904170947:base-wecare-digital"
CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-bench0000000000000000000000000.pem"
TARGET_RPS = 500
TARGET_P99_MS = 100
TARGET_APPLIED_PER_S = 500


def fetch_bench_certificate(url: str) -> bytes:
    """SNS_CERT_FETCHER for the benchmark: the PEM in BENCH_SNS_CERT_FILE (never used in production)."""
    return Path(os.environ["BENCH_SNS_CERT_FILE"]).read_bytes()


# --- set-up -------------------------------------------------------------------------------------------


def fresh_database() -> tuple[str, str]:
    """Create the benchmark's own database next to the run's, migrate it; returns (server, url)."""
    import psycopg

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")) or not os.environ.get("AWS_ENDPOINT_URL"):
        sys.exit("Run this through scripts/with-services.sh (PostgreSQL and moto_server).")
    parsed = urlparse(url)
    server = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')
    bench_url = parsed._replace(path=f"/{DATABASE}").geturl()
    env = {**os.environ, "DATABASE_URL": bench_url, "LOG_LEVEL": "WARNING"}
    for command in (["migrate", "--verbosity", "0"], ["bootstrap_aws"]):
        subprocess.run(
            [sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL
        )
    return server, bench_url


def drop_database(server: str) -> None:
    import psycopg

    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')


def sign_notifications(identity, wamids: list[str], path: Path, t0: int) -> Path:
    """sent, delivered and read of every wamid, signed by ``identity``, as lines "id<TAB>body"."""
    from messaging.tests.sns_signing import eum_envelope, sns_notification, status_value

    started = time.monotonic()
    n = 0
    with path.open("w") as out:
        # Interleaved as a bulk send comes back: all "sent" of a slice, then "delivered", then "read".
        for start in range(0, len(wamids), 200):
            for offset, status in enumerate(("sent", "delivered", "read")):
                for wamid in wamids[start : start + 200]:
                    value = status_value({"id": wamid, "status": status, "timestamp": str(t0 + offset)})
                    body = sns_notification(eum_envelope(value), topic=TOPIC, cert_url=CERT_URL)
                    body = identity.sign(body, version="1" if n % 2 else "2")
                    out.write(f"{body['MessageId']}\t{json.dumps(body, separators=(',', ':'))}\n")
                    n += 1
    print(f"signed {n} notifications in {time.monotonic() - started:.1f}s", flush=True)
    return path


def create_outbound_messages(count: int) -> list[str]:
    """``count`` outbound WhatsApp messages in status "accepted"-like "sent"-less state; their wamids."""
    from contacts.models import Contact
    from messaging.models import Direction, Message, MessageStatus

    contact = Contact.objects.create(name="Bench", phone="+14255550150", opt_in_whatsapp=True)
    wamids = [f"wamid.bench-{uuid.uuid4().hex}" for _ in range(count)]
    Message.objects.bulk_create(
        [
            Message(
                contact=contact,
                channel="whatsapp",
                direction=Direction.OUTBOUND,
                content="bench",
                status=MessageStatus.QUEUED,
                origination_phone_number_id="phone-number-id-bench",
                whatsapp_message_id=wamid,
            )
            for wamid in wamids
        ],
        batch_size=2000,
    )
    return wamids


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(port: int, workers: int, threads: int, env: dict[str, str]) -> subprocess.Popen:
    log = open(ROOT / ".run" / f"bench-gunicorn-{port}.log", "w")  # noqa: SIM115 - lives as long as the server
    process = subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "gunicorn"), "wecare.wsgi:application",
            "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
            "--worker-class", "gthread" if threads > 1 else "sync", "--threads", str(threads),
            "--backlog", "256", "--timeout", "60", "--graceful-timeout", "10",
        ],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"gunicorn exited: see .run/bench-gunicorn-{port}.log")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process
        except OSError:
            time.sleep(0.2)
    stop(process)
    sys.exit("gunicorn did not start within 60 s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def post(port: int, line: str, conn=None):
    import http.client

    message_id, body = line.rstrip("\n").split("\t", 1)
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request(
        "POST",
        "/webhooks/sns/",
        body=body.encode(),
        headers={
            "Content-Type": "text/plain; charset=UTF-8",
            "x-amz-sns-message-type": "Notification",
            "x-amz-sns-message-id": message_id,
            "x-amz-sns-topic-arn": TOPIC,
        },
    )
    response = conn.getresponse()
    response.read()
    return conn, response.status


# --- load ---------------------------------------------------------------------------------------------


def run_load(port: int, lines: list[str], duration: float, connections: int, rate: float) -> dict:
    """``connections`` keep-alive clients, each on its own stride of ``lines``, together sending
    ``rate`` requests a second (0: as fast as they can) for ``duration`` seconds."""
    deadline = time.monotonic() + duration
    latencies: list[list[float]] = [[] for _ in range(connections)]
    failures = [0] * connections
    interval = connections / rate if rate else 0.0

    def client(index: int) -> None:
        conn = None
        due = time.monotonic() + index * interval / connections
        for line in lines[index::connections]:
            now = time.monotonic()
            if now >= deadline:
                break
            if interval and due > now:
                time.sleep(due - now)
            due += interval
            started = time.perf_counter()
            try:
                conn, status = post(port, line, conn)
            except OSError:
                conn, status = None, 0
            latencies[index].append((time.perf_counter() - started) * 1000)
            if status != 200:
                failures[index] += 1

    started = time.monotonic()
    workers = [threading.Thread(target=client, args=(i,)) for i in range(connections)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=duration + 60)
    elapsed = time.monotonic() - started
    values = sorted(v for per in latencies for v in per)

    def pct(fraction: float) -> float:
        return values[min(len(values) - 1, int(fraction * len(values)))] if values else float("nan")

    return {
        "requests": len(values),
        "rps": len(values) / elapsed,
        "p50": pct(0.50),
        "p90": pct(0.90),
        "p99": pct(0.99),
        "non_2xx": sum(failures),
    }


def counts() -> tuple[int, int]:
    """(events stored, events not processed yet) — the backlog is the second."""
    from messaging.models import InboundEvent

    total = InboundEvent.objects.count()
    return total, InboundEvent.objects.exclude(status=InboundEvent.Status.PROCESSED).count()


def start_process(command: list[str], env: dict[str, str], name: str) -> subprocess.Popen:
    log = open(ROOT / ".run" / f"bench-inbound-{name}.log", "w")  # noqa: SIM115 - lives as long as the process
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=550, help="notifications/s sent (paced)")
    parser.add_argument("--duration", type=int, default=60, help="seconds of paced load")
    parser.add_argument("--burst", type=int, default=0, help="seconds of unpaced load first (0: none)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--celery", type=int, default=2, help="processes of the inbound Celery worker")
    args = parser.parse_args()
    if not 1 <= args.duration <= 300 or not 1 <= args.connections <= 256 or not 0 <= args.burst <= 60:
        sys.exit("--duration 1-300 s, --burst 0-60 s, --connections 1-256: a bounded loopback benchmark.")

    (ROOT / ".run").mkdir(exist_ok=True)
    load_before = os.getloadavg()
    server, bench_url = fresh_database()
    os.environ.update({"DATABASE_URL": bench_url, "DJANGO_SETTINGS_MODULE": "wecare.settings", "LOG_LEVEL": "WARNING"})
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from messaging.models import Message
    from messaging.tests.sns_signing import SigningIdentity

    workdir = Path(tempfile.mkdtemp(prefix="bench-inbound-"))
    processes: list[subprocess.Popen] = []
    try:
        total = int(args.rate * args.duration * 1.05) + int(args.burst * 1500)
        wamids = create_outbound_messages(total // 3 + 1)
        identity = SigningIdentity.create()
        cert = workdir / "bench-cert.pem"
        cert.write_bytes(identity.cert_pem)
        lines = sign_notifications(identity, wamids, workdir / "bodies.tsv", int(time.time()) - 60).read_text()
        lines = lines.splitlines()
        env = {
            **os.environ,
            "SNS_TOPIC_ARN": TOPIC,
            "SNS_CERT_FETCHER": "bench.inbound_webhook.fetch_bench_certificate",
            "BENCH_SNS_CERT_FILE": str(cert),
            "DJANGO_DEBUG": "false",
            "CELERY_TASK_ALWAYS_EAGER": "false",
        }
        port = free_port()
        processes.append(start_gunicorn(port, args.workers, args.threads, env))
        python = sys.executable
        processes.append(start_process([python, "manage.py", "relay_inbound_events"], env, "relay"))
        prefix = env.get("CELERY_QUEUE_PREFIX", "")
        loglevel = os.environ.get("BENCH_CELERY_LOGLEVEL", "WARNING")
        processes.append(
            start_process(
                [python, "-m", "celery", "-A", "wecare", "worker", "-Q", prefix + "inbound-queue",
                 "-c", str(args.celery), f"--loglevel={loglevel}", "--without-heartbeat", "--without-mingle",
                 "--without-gossip"],
                env,
                "celery",
            )
        )  # fmt: skip
        time.sleep(8)  # the worker connects to SQS
        # Warm-up, not measured: each gunicorn worker loads the app, the certificate, a connection.
        warm, lines = lines[: args.workers * 8], lines[args.workers * 8 :]
        for line in warm:
            if post(port, line)[1] != 200:
                sys.exit(f"warm-up request failed: see .run/bench-gunicorn-{port}.log")

        burst = None
        if args.burst:
            burst = run_load(port, lines, args.burst, args.connections, 0)
            lines = lines[burst["requests"] + args.connections :]
            print(f"burst: {burst['rps']:.0f} notifications/s accepted unpaced, p99 {burst['p99']:.1f} ms", flush=True)
            deadline = time.monotonic() + 120
            while counts()[1] and time.monotonic() < deadline:
                time.sleep(1)

        stored_before, backlog_before = counts()
        applied_before = Message.objects.filter(status="read").count()
        samples: list[tuple[float, int]] = []
        stop_sampling = threading.Event()

        def sample() -> None:
            started = time.monotonic()
            while not stop_sampling.wait(5):
                samples.append((time.monotonic() - started, counts()[1]))

        sampler = threading.Thread(target=sample)
        sampler.start()
        started = time.monotonic()
        result = run_load(port, lines, args.duration, args.connections, args.rate)
        stop_sampling.set()
        sampler.join()
        window = time.monotonic() - started
        stored, backlog_end = counts()
        # Events processed during the window: stored during it, minus what was still waiting at its end.
        processed_in_window = (stored - stored_before) - (backlog_end - backlog_before)
        deadline = time.monotonic() + 180
        while counts()[1] and time.monotonic() < deadline:
            time.sleep(1)
        drained = counts()[1] == 0
        read = Message.objects.filter(status="read").count() - applied_before
    finally:
        for process in processes:
            stop(process)
        shutil.rmtree(workdir, ignore_errors=True)
        from django.db import connections

        connections.close_all()
        drop_database(server)

    applied_rate = processed_in_window / window
    stored_new = stored - stored_before
    exact = result["requests"] <= stored_new <= result["requests"] + args.connections
    growth = samples[-1][1] - samples[0][1] if len(samples) >= 2 else 0
    flat = max((b for _, b in samples), default=0) <= max(1000, args.rate * 5)
    print(
        f"gunicorn {args.workers}x{args.threads}, relay loop, celery -c {args.celery}; {args.connections} clients "
        f"paced at {args.rate:.0f}/s for {args.duration}s; {os.cpu_count()} CPUs shared with PostgreSQL, moto_server "
        f"and the load; load average before {' '.join(f'{x:.2f}' for x in load_before)}, "
        f"after {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print(f"requests: {result['requests']}  non-2xx: {result['non_2xx']}  stored: {stored_new}")
    print(
        f"accepted: {result['rps']:.0f} notifications/s (target {TARGET_RPS}: ratio {result['rps'] / TARGET_RPS:.2f})"
    )
    print(
        f"latency p50 {result['p50']:.1f} ms, p90 {result['p90']:.1f} ms, p99 {result['p99']:.1f} ms "
        f"(target p99 < {TARGET_P99_MS} ms: ratio {result['p99'] / TARGET_P99_MS:.2f})"
    )
    print(
        f"applied by the workers: {applied_rate:.0f} status notifications/s during the load "
        f"(target {TARGET_APPLIED_PER_S}: ratio {applied_rate / TARGET_APPLIED_PER_S:.2f}); messages now read: {read}"
    )
    print("backlog (stored, not processed) every 5 s: " + ", ".join(f"{b}" for _, b in samples))
    print(f"backlog growth over the run: {growth:+d}; drained afterwards: {drained}")
    ok = (
        result["rps"] >= TARGET_RPS
        and result["p99"] < TARGET_P99_MS
        and applied_rate >= TARGET_APPLIED_PER_S
        and flat
        and drained
        and exact
        and not result["non_2xx"]
    )
    print(
        f"RESULT inbound_webhook accepted_per_s={result['rps']:.0f} p99_ms={result['p99']:.1f} "
        f"applied_per_s={applied_rate:.0f} backlog_growth={growth} drained={drained} "
        f"burst_per_s={burst['rps'] if burst else 0:.0f} ok={ok}"
    )
    if result["non_2xx"] or not exact:
        sys.exit("FAILED: not every notification was answered 200 and stored exactly once")


if __name__ == "__main__":
    main()
