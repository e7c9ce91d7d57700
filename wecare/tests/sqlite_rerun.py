"""Run some tests again in a pytest of their own on a SQLite database: for code with a SQL path of its
own on SQLite (the `make run` default), while the suite itself runs on PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from conftest import ROOT


def rerun_on_sqlite(tmp_path: Path, test_file: str, names: tuple[str, ...]) -> None:
    """Runs `names` of `test_file` on a fresh SQLite file and fails with their output unless all pass."""
    if connection.vendor == "sqlite":
        pytest.skip("this run is on SQLite already")
    env = {name: value for name, value in os.environ.items() if not name.startswith("PYTEST_")}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    tests = [f"{test_file}::{name}" for name in names]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", *tests, "-q", "-p", "no:cacheprovider", "--no-migrations"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert f"{len(names)} passed" in result.stdout
