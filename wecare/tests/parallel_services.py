"""A private AWS emulator for each pytest-xdist worker (loaded with ``-p wecare.tests.parallel_services``).

Tests share nothing through PostgreSQL (pytest-django gives each worker its own test database), but
they would share queues, tables and buckets through one moto_server: a test draining a queue or
resetting the emulator would disturb a test on the other worker. So each worker starts its own
emulator, exactly as `scripts/with-services.sh` starts one for a serial run, and points
``AWS_ENDPOINT_URL`` at it before Django reads its settings.
"""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_emulator(worker: str) -> str:
    port = _free_port()
    log = open(ROOT / ".run" / f"moto-{worker}-{port}.log", "w")  # noqa: SIM115 - open for its lifetime
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "moto_emulator.py"), "-H", "127.0.0.1", "-p", str(port)],
        env={**os.environ, "MOTO_ACCOUNT_ID": os.environ.get("MOTO_ACCOUNT_ID", "809904170947")},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    atexit.register(process.terminate)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the emulator of {worker} exited early (see .run/moto-{worker}-{port}.log)")
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)  # noqa: S310 - loopback
            return endpoint
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the emulator of {worker} did not answer within 60 s")


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config, parser, args):
    # A wrapper runs before pytest-django's hook, which reads the settings (and so the endpoint).
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker and os.environ.get("AWS_ENDPOINT_URL", "").startswith("http://127.0.0.1"):
        (ROOT / ".run").mkdir(exist_ok=True)
        os.environ["AWS_ENDPOINT_URL"] = _start_emulator(worker)
    return (yield)
