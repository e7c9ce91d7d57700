from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from accounts.models import AuditLog
from automation.knowledge import knowledge_best
from automation.models import KnowledgeEntry

pytestmark = pytest.mark.django_db
SAMPLE = Path(__file__).resolve().parents[1] / "sample_knowledge_base.md"


def test_the_sample_knowledge_base_imports_and_answers_a_customer(page_user):
    admin = page_user("Admin")
    out = StringIO()

    call_command("import_knowledge_base", str(SAMPLE), "--user", admin.email, stdout=out)

    assert out.getvalue().strip() == "5 entries imported."
    assert KnowledgeEntry.objects.count() == 5
    assert knowledge_best("hi, what time do you open on sunday?").question == "What are your opening hours?"
    assert AuditLog.objects.filter(action="automation.knowledge_import", user=admin).exists()


def test_a_bad_file_or_user_is_a_clear_error_and_imports_nothing(tmp_path):
    bad = tmp_path / "kb.csv"
    bad.write_text("q,a\nx,y\n")

    with pytest.raises(CommandError, match="columns question and answer"):
        call_command("import_knowledge_base", str(bad))
    with pytest.raises(CommandError, match="No user nobody@example.com"):
        call_command("import_knowledge_base", str(SAMPLE), "--user", "nobody@example.com")
    with pytest.raises(CommandError, match="is not a file"):
        call_command("import_knowledge_base", str(tmp_path / "missing.md"))
    assert not KnowledgeEntry.objects.exists()
