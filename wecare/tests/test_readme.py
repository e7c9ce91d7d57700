"""The README's Configuration section documents every setting wecare/settings.py reads."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# env.str("X", ...), env.list("X"), _int("X", ...), _bool(...), _float, _list, _choice, _require; across lines too.
READ = re.compile(
    r'(?:env\.(?:str|list|bool|int|float|json)|_int|_bool|_float|_list|_choice|_require)\(\s*"([A-Z][A-Z0-9_]*)"'
)


def _settings_read() -> set[str]:
    return set(READ.findall((ROOT / "wecare" / "settings.py").read_text()))


def _documented() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    configuration = readme.split("\n## Configuration", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", configuration, flags=re.MULTILINE))


def test_the_pattern_finds_the_settings_it_should():
    found = _settings_read()

    assert {"ENVIRONMENT", "SEND_MODE", "WHATSAPP_PHONE_NUMBER_IDS", "AWS_MAX_ATTEMPTS", "DATABASE_URL"} <= found


def test_every_setting_read_in_settings_has_a_row_in_the_readme():
    missing = sorted(_settings_read() - _documented())

    assert not missing, f"add a row to README.md (Configuration) for: {', '.join(missing)}"


def test_the_readme_documents_no_setting_that_is_not_read():
    stale = sorted(_documented() - _settings_read())

    assert not stale, f"README.md (Configuration) documents settings nobody reads: {', '.join(stale)}"
