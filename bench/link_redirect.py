"""Benchmark: short-link redirects (/l/<slug>/<token>) with every click recorded, on gunicorn + PostgreSQL.

    scripts/with-services.sh .venv/bin/python bench/link_redirect.py [--duration 20] [--clients 2x6]
        [--workers 3] [--links 50] [--personal 20000]

What runs, all on this machine: gunicorn as deployed (``wecare.wsgi:application``, sync workers,
WEB_CONCURRENCY 3, access log on) on a database of its own, migrated and filled with short links,
contacts, a bulk job and its personal links. Load generator processes (``--clients PxT``: P processes
of T threads, closed loop: each thread sends its next request when the last one is answered) send
GETs as browsers behind the load balancer would: a browser User-Agent, X-Forwarded-For from 20,000
addresses (so no source reaches the per-source limit), 80 % personal links, 15 % plain short links
and 5 % link-preview fetchers (WhatsApp; redirected, never counted). A new connection per request,
as the sync workers answer with ``Connection: close``.

Prints redirects/s and latency percentiles (target: >= 1,000/s, p99 < 50 ms), the load average
before and after (the machine is shared), and checks: every answer 302, the clicks in PostgreSQL
equal the counted redirects (none lost, none for a preview) and attributed to their contacts and
the job; then one source sending more than the limit gets 429. Ends with a RESULT line.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
DATABASE = "wecare_bench_links"
TARGET_RPS = 1000
TARGET_P99_MS = 50
BROWSER = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1"
PREVIEW = "WhatsApp/2.23.20.0 A"


# --- set-up -------------------------------------------------------------------------------------------


def fresh_database() -> tuple[str, str]:
    import psycopg

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("Run this through scripts/with-services.sh (PostgreSQL).")
    parsed = urlparse(url)
    server = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')
    bench_url = parsed._replace(path=f"/{DATABASE}").geturl()
    env = {**os.environ, "DATABASE_URL": bench_url, "LOG_LEVEL": "WARNING"}
    subprocess.run([sys.executable, "manage.py", "migrate", "--verbosity", "0"], cwd=ROOT, env=env, check=True)
    return server, bench_url


def drop_database(server: str) -> None:
    import psycopg

    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')


def fill(links: int, personal: int) -> tuple[list[str], list[tuple[str, str]], object]:
    """``links`` short links; ``personal`` personal links (each its own contact) of one bulk job."""
    from accounts.services import user_create
    from bulk.models import BulkJob
    from contacts.models import Contact
    from links.models import PersonalLink
    from links.personal import new_token
    from links.services import link_create

    user = user_create(email="bench-links@example.com", role="Operator")
    slugs = [
        link_create(
            user=user, slug=f"bench-{n:03d}", destination=f"https://shop.example.com/p/{n}", utm={"utm_source": "bench"}
        ).slug
        for n in range(links)
    ]
    from links.models import ShortLink

    by_slug = {link.slug: link for link in ShortLink.objects.all()}
    contacts = Contact.objects.bulk_create(
        [Contact(name=f"Bench {n}", phone=f"+9195{n:08d}", opt_in_sms=True) for n in range(personal)], batch_size=2000
    )
    job = BulkJob.objects.create(channel="sms", recipient_source="ids", created_by=user, sent_count=personal)
    rows = [
        PersonalLink(token=new_token(), link=by_slug[slugs[n % links]], contact=contact, bulk_job=job)
        for n, contact in enumerate(contacts)
    ]
    PersonalLink.objects.bulk_create(rows, batch_size=2000)
    return slugs, [(row.link.slug, row.token) for row in rows], job


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(port: int, workers: int, env: dict[str, str]) -> subprocess.Popen:
    """As scripts/entrypoint.sh starts the web role (sync workers, access log), on a loopback port."""
    log = open(ROOT / ".run" / f"bench-links-gunicorn-{port}.log", "w")  # noqa: SIM115 - lives with the server
    process = subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "gunicorn"), "wecare.wsgi:application",
            "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--timeout", "60",
            "--access-logfile", "-", "--forwarded-allow-ips", "*", "--backlog", "512",
        ],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"gunicorn exited: see .run/bench-links-gunicorn-{port}.log")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process
        except OSError:
            time.sleep(0.2)
    stop(process)
    sys.exit("gunicorn did not start within 60 s")


def stop(process: subprocess.Popen) -> None:
    """SIGTERM: gunicorn's workers finish and write the clicks they still buffer (atexit)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# --- where the time goes ---------------------------------------------------------------------------


def group_pids(leader: int) -> list[int]:
    """The processes of a process group (gunicorn's master and its workers)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == leader:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def backend_pids() -> list[int]:
    """The PostgreSQL backends serving the benchmark's database (the server runs on this machine)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [DATABASE])
        return [row[0] for row in cursor.fetchall()]


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU the processes have used so far (what a process that has ended used is lost)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# --- load ---------------------------------------------------------------------------------------------


def get(port: int, path: str, agent: str, source: str) -> int:
    request = (
        f"GET {path} HTTP/1.1\r\nHost: go.example.com\r\nUser-Agent: {agent}\r\n"
        f"X-Forwarded-For: {source}\r\nX-Forwarded-Proto: https\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        answer = b""
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return int(answer[9:12]) if answer.startswith(b"HTTP/1.") else 0


def plan(slugs: list[str], personal: list[tuple[str, str]], seed: int, count: int) -> list[tuple[str, str, str]]:
    """(path, user agent, source address) of ``count`` requests in the mix of the module docstring."""
    rng = random.Random(seed)
    requests = []
    for _ in range(count):
        source = f"10.{rng.randrange(80)}.{rng.randrange(250)}.{rng.randrange(1, 250)}"
        draw = rng.random()
        if draw < 0.80:
            slug, token = personal[rng.randrange(len(personal))]
            requests.append((f"/l/{slug}/{token}", BROWSER, source))
        elif draw < 0.95:
            requests.append((f"/l/{slugs[rng.randrange(len(slugs))]}", BROWSER, source))
        else:
            requests.append((f"/l/{slugs[rng.randrange(len(slugs))]}", PREVIEW, source))
    return requests


def client_process(port, requests, threads, start_at, duration, results) -> None:
    """T threads in this process, each on its stride of ``requests``, until ``duration`` is over."""
    latencies: list[list[float]] = [[] for _ in range(threads)]
    statuses: list[dict[int, int]] = [{} for _ in range(threads)]
    counted = [0] * threads  # 302s for a browser (the clicks that must be in the database)
    attributed = [0] * threads

    def run(index: int) -> None:
        while time.time() < start_at:
            time.sleep(0.001)
        deadline = start_at + duration
        for path, agent, source in requests[index::threads]:
            if time.time() >= deadline:
                break
            started = time.perf_counter()
            try:
                status = get(port, path, agent, source)
            except OSError:
                status = 0
            latencies[index].append((time.perf_counter() - started) * 1000)
            statuses[index][status] = statuses[index].get(status, 0) + 1
            if status == 302 and agent == BROWSER:
                counted[index] += 1
                attributed[index] += path.count("/") == 3

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    merged: dict[int, int] = {}
    for per in statuses:
        for status, n in per.items():
            merged[status] = merged.get(status, 0) + n
    results.put(([v for per in latencies for v in per], merged, sum(counted), sum(attributed)))


def run_load(port: int, requests: list, processes: int, threads: int, duration: float) -> dict:
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    start_at = time.time() + 1.0
    children = [
        context.Process(
            target=client_process, args=(port, requests[i::processes], threads, start_at, duration, results)
        )
        for i in range(processes)
    ]
    for child in children:
        child.start()
    values: list[float] = []
    statuses: dict[int, int] = {}
    counted = attributed = 0
    for _ in children:
        latencies, merged, c, a = results.get(timeout=duration + 120)
        values += latencies
        counted += c
        attributed += a
        for status, n in merged.items():
            statuses[status] = statuses.get(status, 0) + n
    for child in children:
        child.join()
    values.sort()

    def pct(fraction: float) -> float:
        return values[min(len(values) - 1, int(fraction * len(values)))] if values else float("nan")

    return {
        "requests": len(values),
        "rps": len(values) / duration,
        "p50": pct(0.50),
        "p90": pct(0.90),
        "p99": pct(0.99),
        "max": values[-1] if values else float("nan"),
        "statuses": statuses,
        "counted": counted,
        "attributed": attributed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=20, help="seconds of measured load")
    parser.add_argument("--clients", default="2x6", help="load generator: PROCESSESxTHREADS")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync workers (WEB_CONCURRENCY)")
    parser.add_argument("--links", type=int, default=50)
    parser.add_argument("--personal", type=int, default=20_000)
    args = parser.parse_args()
    processes, threads = (int(part) for part in args.clients.lower().split("x"))
    if not 1 <= args.duration <= 120 or not 1 <= processes * threads <= 64 or not 1 <= args.workers <= 8:
        sys.exit("--duration 1-120 s, --clients up to 64 threads, --workers 1-8: a bounded loopback benchmark.")

    (ROOT / ".run").mkdir(exist_ok=True)
    load_before = os.getloadavg()
    server, bench_url = fresh_database()
    os.environ.update({"DATABASE_URL": bench_url, "DJANGO_SETTINGS_MODULE": "wecare.settings", "LOG_LEVEL": "WARNING"})
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connections

    from links.models import Click

    gunicorn = None
    try:
        started = time.monotonic()
        slugs, personal, job = fill(args.links, args.personal)
        print(
            f"{args.links} links, {len(personal)} personal links of one bulk job in {time.monotonic() - started:.1f}s"
        )
        requests = plan(slugs, personal, seed=20, count=max(60_000, args.duration * 4000))
        connections.close_all()  # the load generator forks: no shared connection
        env = {
            **os.environ,
            "DJANGO_DEBUG": "false",
            "TRUSTED_PROXY_HOPS": "1",
            "LINK_CLICK_FLUSH_SECONDS": "0.2",
            "WEB_CONCURRENCY": str(args.workers),
        }
        port = free_port()
        gunicorn = start_gunicorn(port, args.workers, env)
        # Warm-up, not measured: each worker imports the app and opens its connection.
        for path, agent, source in requests[:60]:
            if get(port, path, agent, source) != 302:
                sys.exit(f"warm-up request failed: see .run/bench-links-gunicorn-{port}.log")
        time.sleep(1)
        clicks_before = Click.objects.count()
        attributed_before = Click.objects.filter(bulk_job=job, contact__isnull=False).count()
        print(f"load: {processes}x{threads} client threads, {args.duration}s; {args.workers} gunicorn sync workers")
        server_pids, database_pids = group_pids(gunicorn.pid), backend_pids()
        cpu_before = (cpu_seconds(server_pids), cpu_seconds(database_pids), children_cpu())
        result = run_load(port, requests[60:], processes, threads, args.duration)
        cpu_after = (cpu_seconds(server_pids), cpu_seconds(database_pids), children_cpu())
        cpu = [(b - a) * 1000 / max(1, result["requests"]) for a, b in zip(cpu_before, cpu_after, strict=True)]

        # The flushers write every 0.2 s; then the graceful stop writes whatever is left.
        time.sleep(1)
        clicks_live = Click.objects.count() - clicks_before

        # One source over the limit: with N workers each counting for itself, N x limit + more.
        limit_hits = {}
        for _ in range(args.workers * 120 + 60):
            status = get(port, f"/l/{slugs[0]}", PREVIEW, "192.0.2.77")
            limit_hits[status] = limit_hits.get(status, 0) + 1
        stop(gunicorn)
        gunicorn = None
        clicks = Click.objects.count() - clicks_before
        attributed = Click.objects.filter(bulk_job=job, contact__isnull=False).count() - attributed_before
        load_after = os.getloadavg()

        print(
            f"redirects: {result['requests']} in {args.duration}s = {result['rps']:.0f}/s "
            f"(target >= {TARGET_RPS}/s, ratio {result['rps'] / TARGET_RPS:.2f})"
        )
        print(
            f"latency ms: p50 {result['p50']:.1f}  p90 {result['p90']:.1f}  p99 {result['p99']:.1f}  "
            f"max {result['max']:.1f} (target p99 < {TARGET_P99_MS} ms, ratio {TARGET_P99_MS / result['p99']:.2f})"
        )
        print(f"answers: {dict(sorted(result['statuses'].items()))}")
        print(
            f"CPU per redirect: gunicorn {cpu[0]:.2f} ms, PostgreSQL {cpu[1]:.2f} ms, load generator {cpu[2]:.2f} ms "
            f"(total {sum(cpu):.2f} ms; {os.cpu_count()} cores at {sum(cpu):.2f} ms a redirect, if they were ours "
            f"alone: ~{os.cpu_count() * 1000 / max(sum(cpu), 0.001):.0f}/s; the server side alone: "
            f"~{os.cpu_count() * 1000 / max(cpu[0] + cpu[1], 0.001):.0f}/s)"
        )
        print(
            f"clicks recorded: {clicks} (within 1 s of the load: {clicks_live}) for {result['counted']} counted "
            f"redirects; attributed to a contact and the job: {attributed} of {result['attributed']}"
        )
        print(f"one source over the limit: {dict(sorted(limit_hits.items()))}")
        print(
            f"load average before {load_before[0]:.2f} {load_before[1]:.2f}, after {load_after[0]:.2f} "
            f"{load_after[1]:.2f} on {os.cpu_count()} cores (a shared machine)"
        )
        all_redirects = set(result["statuses"]) == {302}
        exact = clicks == result["counted"] and attributed == result["attributed"]
        limited = limit_hits.get(429, 0) > 0
        ok = result["rps"] >= TARGET_RPS and result["p99"] < TARGET_P99_MS and all_redirects and exact and limited
        print(
            f"RESULT {'PASS' if ok else 'FAIL'} link_redirect rps={result['rps']:.0f} p99_ms={result['p99']:.1f} "
            f"clicks_exact={exact} all_302={all_redirects} rate_limited={limited} "
            f"load1={load_after[0]:.1f}"
        )
    finally:
        if gunicorn is not None:
            stop(gunicorn)
        connections.close_all()
        drop_database(server)


if __name__ == "__main__":
    main()
