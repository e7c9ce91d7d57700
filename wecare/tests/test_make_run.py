"""`make run` as a newcomer meets it: the very script (scripts/run-local.sh), its SQLite default and every
process it starts (web, worker, bulk worker with 2 processes and their send threads, beat), driven
over HTTP while they all write at once.

It runs beside a developer's own `make run`: free ports, a SQLite file and a run directory of its own
(the variables scripts/local-env.sh reads), and its own moto and local End User Messaging Social.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
BULK_RECIPIENTS = 1000
ONE_TO_ONE_SENDS = 50
START_TIMEOUT = 120
FINISH_TIMEOUT = 150
# What must never appear in any log of the run.
FAILURES = re.compile(
    r"Traceback|database is locked|OperationalError"
    r"| (ERROR|CRITICAL) |(ERROR|CRITICAL)/|\"level(name)?\": ?\"(ERROR|CRITICAL)\""  # plain, Celery and JSON logs
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LocalPlatform:
    process: subprocess.Popen
    url: str
    run_dir: Path
    log_path: Path
    sqlite_path: Path
    env: dict[str, str]

    def logs(self) -> str:
        """Everything the run printed: honcho's interleaved output and every log file in its run directory."""
        parts = [self.log_path.read_text(errors="replace")]
        parts += [p.read_text(errors="replace") for p in sorted(self.run_dir.glob("*.log"))]
        return "\n".join(parts)

    def failures(self) -> list[str]:
        return [line for line in self.logs().splitlines() if FAILURES.search(line)]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # run-local.sh stops everything it started
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> Iterator[LocalPlatform]:
    base = tmp_path_factory.mktemp("make-run")
    web_port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DATABASE_", "SNS_", "CELERY_"))}
    env.update(
        WEB_PORT=str(web_port),
        MOTO_PORT=str(_free_port()),
        FAKE_SOCIAL_PORT=str(_free_port()),
        WECARE_SQLITE_PATH=str(base / "db.sqlite3"),
        WECARE_RUN_DIR=str(base / "run"),
        # The only change to the defaults: email may go out fast enough for 1,000 recipients in a test.
        RATE_LIMIT_EMAIL="200",
    )
    log_path = base / "make-run.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [str(ROOT / "scripts" / "run-local.sh")],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = LocalPlatform(process, f"http://127.0.0.1:{web_port}", base / "run", log_path, base / "db.sqlite3", env)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert process.poll() is None, f"run-local.sh exited early:\n{running.logs()[-4000:]}"
            try:
                if (
                    requests.get(f"{running.url}/healthz", timeout=2).status_code < 500
                    and "beat: Starting" in running.logs()
                ):
                    break
            except requests.ConnectionError:
                pass
            time.sleep(1)
        else:
            pytest.fail(f"make run did not serve within {START_TIMEOUT} s:\n{running.logs()[-4000:]}")
        yield running
    finally:
        running.stop()


def _signed_in(platform: LocalPlatform, password: str = "") -> requests.Session:
    match = re.search(r"Local login: (\S+)\s+password: (\S+)", platform.logs())
    assert match, "run-local.sh printed no local login"
    session = requests.Session()
    session.get(f"{platform.url}/accounts/login/", timeout=10)
    response = session.post(
        f"{platform.url}/accounts/login/",
        data={
            "username": match[1],
            "password": password or match[2],
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        headers={"Referer": f"{platform.url}/accounts/login/"},
        timeout=10,
    )
    assert response.ok and "/accounts/login/" not in response.url, "the local login did not sign in"
    session.headers.update({"X-CSRFToken": session.cookies["csrftoken"], "Referer": platform.url})
    return session


def _create_contacts(session: requests.Session, url: str, prefix: str, count: int) -> list[str]:
    def create(number: int) -> str:
        body = {"name": f"{prefix} {number}", "email": f"{prefix}-{number}@example.com", "optInEmail": True}
        response = session.post(f"{url}/api/contacts/", json=body, timeout=30)
        assert response.status_code == 201, response.text
        return response.json()["contactId"]

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(create, range(count)))


def _send_one_to_one(session: requests.Session, url: str, contact_ids: list[str]) -> list[str]:
    def send(contact_id: str) -> str:
        body = {"contactId": contact_id, "channel": "email", "subject": "Hello", "text": "Your report is ready."}
        response = session.post(f"{url}/api/messages/", json=body, timeout=30)
        assert response.status_code in (201, 202), response.text
        return response.json()["messageId"]

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(send, contact_ids))


def _wait_for(check, what: str, platform: LocalPlatform, timeout: float = FINISH_TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        assert not platform.failures(), platform.failures()[:20]
        time.sleep(2)
    pytest.fail(f"{what} did not happen within {timeout} s")


@pytest.mark.timeout(420)
def test_make_run_on_sqlite_carries_one_to_one_sends_and_a_1000_recipient_bulk_job_at_once(platform):
    session = _signed_in(platform)
    url = platform.url
    assert session.get(f"{url}/", timeout=10).ok

    single = _create_contacts(session, url, "single", ONE_TO_ONE_SENDS)
    _create_contacts(session, url, "bulk-e2e", BULK_RECIPIENTS)
    contact = session.get(f"{url}/api/contacts/{single[0]}/", timeout=10).json()
    assert contact["optInEmail"] is True and contact["email"] == "single-0@example.com"

    job = session.post(
        f"{url}/api/bulk/jobs/",
        json={
            "channel": "email",
            "filter": {"search": "bulk-e2e", "optIn": True},
            "subject": "News",
            "text": "Our news of the month.",
        },
        timeout=60,
    )
    assert job.status_code == 201, job.text
    job_id = job.json()["jobId"]
    assert job.json()["preflight"]["willSend"] == BULK_RECIPIENTS
    with ThreadPoolExecutor(max_workers=2) as pool:
        confirmed = pool.submit(
            session.post, f"{url}/api/bulk/jobs/{job_id}/confirm", json={"count": BULK_RECIPIENTS}, timeout=60
        )
        message_ids = _send_one_to_one(session, url, single)
        assert confirmed.result().status_code == 200, confirmed.result().text

    def job_done():
        body = session.get(f"{url}/api/bulk/jobs/{job_id}/", timeout=10).json()
        return body if body["status"] in ("COMPLETED", "FAILED", "CANCELLED") else None

    def messages_done():
        statuses = [session.get(f"{url}/api/messages/{m}/", timeout=10).json()["status"] for m in message_ids]
        return statuses if "queued" not in statuses else None

    statuses = _wait_for(messages_done, "50 one-to-one sends reaching a final state", platform)
    finished = _wait_for(job_done, "the bulk job finishing", platform)

    assert statuses == ["sent"] * ONE_TO_ONE_SENDS
    assert finished["status"] == "COMPLETED", finished
    assert finished["progress"]["sentCount"] == BULK_RECIPIENTS, finished["progress"]
    assert platform.failures() == []

    # Idle with beat ticking: nothing more is logged as an error.
    time.sleep(15)
    assert platform.failures() == []


def _manage(platform: LocalPlatform, *args: str) -> str:
    """A command as the README prints it, typed in a new shell (only the moved ports and paths are set)."""
    result = subprocess.run(
        [str(ROOT / "scripts" / "manage.sh"), *args],
        cwd="/",
        env={
            k: platform.env[k]
            for k in (
                "PATH",
                "HOME",
                "WEB_PORT",
                "MOTO_PORT",
                "FAKE_SOCIAL_PORT",
                "WECARE_SQLITE_PATH",
                "WECARE_RUN_DIR",
            )
            if k in platform.env
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_playing_the_customer_runs_the_whole_inbound_path_text_image_status_and_stop(platform):
    password = re.search(r"password: (\S+)", _manage(platform, "ensure_local_login", "--reset-password"))[1]
    assert password not in platform.logs()
    session = _signed_in(platform, password=password)
    url = platform.url

    _manage(platform, "play_customer", "text", "Hello, is my order on its way?", "--from", "14255550177")
    contact = _wait_for(
        lambda: next(iter(session.get(f"{url}/api/contacts/?search=14255550177", timeout=10).json()["results"]), None),
        "the inbound text creating its contact",
        platform,
        timeout=60,
    )
    assert contact["lastInboundMessageAt"]
    session.patch(f"{url}/api/contacts/{contact['contactId']}/", json={"optInWhatsApp": True}, timeout=10)
    reply = session.post(
        f"{url}/api/messages/",
        json={"contactId": contact["contactId"], "channel": "whatsapp", "text": "It ships today."},
        timeout=30,
    )
    assert reply.status_code == 202, reply.text  # inside the 24-hour window the customer just opened
    _manage(platform, "play_customer", "image", "--caption", "This one", "--from", "14255550177")
    _manage(platform, "play_customer", "status", "read", "--message", reply.json()["messageId"])
    _manage(platform, "play_customer", "stop", "--from", "14255550177")

    def inbound_done():
        messages = session.get(f"{url}/api/messages/?contactId={contact['contactId']}", timeout=10).json()["results"]
        image = [m for m in messages if m["direction"] == "inbound" and m["messageType"] == "image"]
        opted_out = not session.get(f"{url}/api/contacts/{contact['contactId']}/", timeout=10).json()["optInWhatsApp"]
        read = session.get(f"{url}/api/messages/{reply.json()['messageId']}/", timeout=10).json()["status"] == "read"
        return (image, opted_out, read) if image and opted_out and read else None

    image, _, _ = _wait_for(inbound_done, "the image, the read status and STOP being applied", platform, timeout=60)
    page = session.get(f"{url}/dm/{contact['contactId']}/", timeout=10)
    assert '<img class="media-preview"' in page.text  # the image was fetched from the local EUM into S3
    assert platform.failures() == []
