"""Benchmark: POST /webhooks/sns/ under gunicorn, fed signed SNS notifications by a load tool.

    scripts/with-services.sh .venv/bin/python bench/inbound_webhook.py [--duration 15] [--connections 16]
        [--workers 4] [--threads 4] [--messages 12000] [--tool wrk|python] [--broker sqs|memory]

What runs: gunicorn (gthread workers) on 127.0.0.1 serving the real endpoint, which verifies each
signature (RSA, SHA1 or SHA256 — half of each), stores the notification in PostgreSQL and queues its
Celery task on SQS (the run's moto_server). The certificate comes from a file through
SNS_CERT_FETCHER (this module's ``fetch_bench_certificate``), so nothing leaves the machine. The load
is Debian's ``wrk`` with bench/inbound_webhook.lua (or, without wrk, a bounded Python generator of
keep-alive connections); both stop by themselves after --duration seconds. ``--broker memory`` puts
the Celery task on kombu's in-process transport instead of SQS: on this machine moto_server's SQS is
the slowest part (one Python process), and that run shows what the endpoint itself costs. Every notification is
unique (its own SNS MessageId and wamid) until the pre-signed set runs out.

Prints requests/s and latency percentiles, checks every answer was 200 and every notification was
stored once, and compares with what it chases:
- throughput: 640 notifications/s = 2 phone numbers x 80 messages/s (Meta's default per-number
  throughput) x 4 events per message (the inbound message, or sent + delivered + read statuses);
- latency: SNS gives an HTTP endpoint 15 s before it counts a delivery as failed and retries.
"""

from __future__ import annotations

import argparse
import json
import os
import re
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
DATABASE = "wecare_bench_inbound"
TOPIC = "arn:aws:sns:us-east-1:809904170947:base-wecare-digital"
CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-bench0000000000000000000000000.pem"
TARGET_RPS = 2 * 80 * 4
SNS_TIMEOUT_MS = 15_000


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


def sign_notifications(identity, count: int, path: Path) -> Path:
    """``count`` unique notifications signed by ``identity``, as lines "id<TAB>body" in ``path``."""
    from messaging.tests.sns_signing import eum_envelope, inbound_value, sns_notification

    started = time.monotonic()
    with path.open("w") as out:
        for n in range(count):
            wamid = f"wamid.bench-{uuid.uuid4().hex}"
            message = {"id": wamid, "type": "text", "text": {"body": f"bench message {n}"}}
            body = sns_notification(eum_envelope(inbound_value(message)), topic=TOPIC, cert_url=CERT_URL)
            body = identity.sign(body, version="1" if n % 2 else "2")
            out.write(f"{body['MessageId']}\t{json.dumps(body, separators=(',', ':'))}\n")
    print(f"signed {count} notifications in {time.monotonic() - started:.1f}s", flush=True)
    return path


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


def run_wrk(port: int, bodies: Path, duration: int, connections: int, threads: int) -> dict:
    command = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "20s", "--latency",
        "-s", str(ROOT / "bench" / "inbound_webhook.lua"), f"http://127.0.0.1:{port}/webhooks/sns/",
        "--", str(threads), TOPIC,
    ]  # fmt: skip
    output = subprocess.run(
        command, env={**os.environ, "BENCH_BODIES": str(bodies)}, capture_output=True, text=True, timeout=duration + 60
    ).stdout
    print(output, flush=True)

    def ms(label: str) -> float:
        match = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
        if not match:
            return float("nan")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    requests = int(re.search(r"(\d+) requests in", output).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return {
        "tool": "wrk",
        "requests": requests,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50": ms("50%"),
        "p90": ms("90%"),
        "p99": ms("99%"),
        "non_2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": sum(int(g) for g in socket_errors.groups()) if socket_errors else 0,
    }


def run_python(port: int, bodies: Path, duration: int, connections: int) -> dict:
    """Bounded load without wrk: ``connections`` keep-alive clients, each on its own stride of bodies."""
    lines = bodies.read_text().splitlines()
    deadline = time.monotonic() + duration
    latencies: list[list[float]] = [[] for _ in range(connections)]
    failures = [0] * connections

    def client(index: int) -> None:
        conn = None
        for line in lines[index::connections]:
            if time.monotonic() >= deadline:
                break
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
        "tool": f"python ({connections} keep-alive clients)",
        "requests": len(values),
        "rps": len(values) / elapsed,
        "p50": pct(0.50),
        "p90": pct(0.90),
        "p99": pct(0.99),
        "non_2xx": sum(failures),
        "socket_errors": 0,
    }


def stored_events(bench_url: str) -> int:
    import psycopg

    with psycopg.connect(bench_url) as conn:
        return conn.execute("SELECT count(*) FROM messaging_inboundevent").fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=15, help="seconds of load (the tool stops by itself)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker (1: sync workers)")
    parser.add_argument("--messages", type=int, default=12000, help="distinct signed notifications")
    parser.add_argument("--tool", choices=["wrk", "python"], default="wrk" if shutil.which("wrk") else "python")
    parser.add_argument(
        "--broker", choices=["sqs", "memory"], default="sqs", help="where the endpoint queues the task (see above)"
    )
    args = parser.parse_args()
    if not 1 <= args.duration <= 120 or not 1 <= args.connections <= 256:
        sys.exit("--duration must be 1-120 s and --connections 1-256: this is a bounded loopback benchmark.")

    (ROOT / ".run").mkdir(exist_ok=True)
    load_before = os.getloadavg()[0]  # other work on the machine skews every figure: say how busy it was
    server, bench_url = fresh_database()
    workdir = Path(tempfile.mkdtemp(prefix="bench-inbound-"))
    process = None
    try:
        sys.path.insert(0, str(ROOT))
        from messaging.tests.sns_signing import SigningIdentity

        identity = SigningIdentity.create()
        cert = workdir / "bench-cert.pem"
        cert.write_bytes(identity.cert_pem)
        bodies = sign_notifications(identity, args.messages, workdir / "bodies.tsv")
        warm = sign_notifications(identity, args.workers * 4, workdir / "warm.tsv")
        env = {
            **os.environ,
            "DATABASE_URL": bench_url,
            "DJANGO_SETTINGS_MODULE": "wecare.settings",
            "SNS_TOPIC_ARN": TOPIC,
            "SNS_CERT_FETCHER": "bench.inbound_webhook.fetch_bench_certificate",
            "BENCH_SNS_CERT_FILE": str(cert),
            "LOG_LEVEL": "WARNING",
            "DJANGO_DEBUG": "false",
        }
        if args.broker == "memory":
            env["CELERY_BROKER_URL"] = "memory://"
        port = free_port()
        process = start_gunicorn(port, args.workers, args.threads, env)
        # Warm-up, not measured: every worker loads the app, the certificate and an SQS connection.
        for line in warm.read_text().splitlines():
            _conn, status = post(port, line)
            if status != 200:
                sys.exit(f"warm-up request answered {status}: see .run/bench-gunicorn-{port}.log")
        before = stored_events(bench_url)

        if args.tool == "wrk":
            result = run_wrk(port, bodies, args.duration, args.connections, threads=2)
        else:
            result = run_python(port, bodies, args.duration, args.connections)
        stored = stored_events(bench_url) - before
    finally:
        if process is not None:
            stop(process)
        shutil.rmtree(workdir, ignore_errors=True)
        drop_database(server)

    unique_sent = min(result["requests"], args.messages)
    print(
        f"tool: {result['tool']}; broker: {args.broker}; gunicorn {args.workers} workers x {args.threads} threads; "
        f"{args.connections} connections; {args.duration}s; {os.cpu_count()} CPUs shared by the load tool, "
        f"gunicorn, PostgreSQL and moto_server; load average before {load_before:.1f}, after {os.getloadavg()[0]:.1f}"
    )
    print(f"requests: {result['requests']}  non-2xx: {result['non_2xx']}  socket errors: {result['socket_errors']}")
    # wrk counts completed requests only: the last few in flight when it stops may still be stored.
    exact = unique_sent <= stored <= unique_sent + args.connections
    print(f"stored notifications: {stored} (expected {unique_sent}, + at most {args.connections} in flight at the end)")
    print(f"requests/s: {result['rps']:.0f}  ({result['rps'] / TARGET_RPS:.2f}x the {TARGET_RPS}/s chased)")
    print(
        f"latency p50 {result['p50']:.1f} ms, p90 {result['p90']:.1f} ms, p99 {result['p99']:.1f} ms "
        f"(p99 = {result['p99'] / SNS_TIMEOUT_MS:.4f} of SNS's {SNS_TIMEOUT_MS // 1000} s delivery timeout)"
    )
    if result["non_2xx"] or result["socket_errors"] or not exact:
        sys.exit("FAILED: not every notification was answered 200 and stored exactly once")


if __name__ == "__main__":
    main()
