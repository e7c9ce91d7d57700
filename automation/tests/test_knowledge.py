"""The local knowledge base: BM25 ranking, the threshold, and the Markdown/CSV import."""

from __future__ import annotations

import re

import pytest

from accounts.models import AuditLog
from automation.knowledge import KnowledgeImportError, knowledge_best, knowledge_import, knowledge_search
from automation.models import KnowledgeEntry

pytestmark = pytest.mark.django_db


def test_the_entry_sharing_the_most_telling_words_ranks_first(faq):
    hits = knowledge_search("Hi, are you opening on Sunday? what hours?", k=3)

    assert hits[0].question == "What are your opening hours on Sunday?"
    assert hits[0].score > (hits[1].score if len(hits) > 1 else 0)


def test_words_are_stemmed_so_refunds_finds_refund(faq):
    best = knowledge_best("Can I get my refunds back?")

    assert best is not None and best.answer.startswith("Refunds are paid")


def test_below_the_threshold_there_is_no_suggestion(faq, settings):
    assert knowledge_best("Tell me a joke about penguins") is None
    settings.AI_KB_MIN_SCORE = 1000.0
    assert knowledge_best("What are your opening hours on Sunday?") is None


def test_an_empty_knowledge_base_suggests_nothing():
    assert knowledge_search("opening hours") == []


def test_the_index_follows_changes_to_the_entries(faq):
    assert knowledge_best("Do you sell gift vouchers?") is None

    KnowledgeEntry.objects.create(question="Do you sell gift vouchers?", answer="Yes, from 500 INR.", tags="gifts")

    assert knowledge_best("Do you sell gift vouchers?").answer == "Yes, from 500 INR."


MARKDOWN = b"""# Our FAQ
Intro text that is not an entry.

## When do you open?
Tags: hours, opening
Every day at 9:00.

## Where are you?
12 MG Road, Bengaluru.
Near the metro.

## An empty heading
"""


def test_markdown_question_headings_become_entries_with_the_text_under_them_as_answers(page_user):
    admin = page_user("Admin")

    count = knowledge_import(data=MARKDOWN, filename="faq.md", user=admin)

    assert count == 2  # the title is not a question, and the empty heading has no answer
    rows = list(KnowledgeEntry.objects.order_by("question").values_list("question", "answer", "tags"))
    assert rows == [
        ("When do you open?", "Every day at 9:00.", "hours, opening"),
        ("Where are you?", "12 MG Road, Bengaluru.\nNear the metro.", ""),
    ]
    assert AuditLog.objects.filter(action="automation.knowledge_import", user=admin).exists()


def test_a_csv_with_question_and_answer_columns_is_imported_and_replace_drops_the_old(faq, page_user):
    data = b"Question,Answer,Tags\nIs parking free?,Yes for 2 hours.,parking\n"

    assert knowledge_import(data=data, filename="kb.CSV", user=page_user("Admin"), replace=True) == 1

    assert list(KnowledgeEntry.objects.values_list("question", flat=True)) == ["Is parking free?"]


@pytest.mark.parametrize(
    ("data", "filename", "error"),
    [
        (b"q,a\nx,y\n", "kb.csv", "columns question and answer"),
        (b"question,answer\nonly a question,\n", "kb.csv", "Line 2"),
        (b"\xff\xfe\x00", "kb.md", "not UTF-8"),
        (b"question,answer\n", "kb.csv", "no entries"),
        (b"# Q\nA", "kb.txt", "Markdown (.md) or CSV"),
    ],
)
def test_bad_files_are_refused_with_a_reason_and_nothing_is_written(faq, page_user, data, filename, error):
    with pytest.raises(KnowledgeImportError, match=re.escape(error)):
        knowledge_import(data=data, filename=filename, user=page_user("Admin"))

    assert KnowledgeEntry.objects.count() == len(faq)


def test_a_file_over_the_size_limit_is_refused(settings, page_user):
    settings.AI_KB_IMPORT_MAX_BYTES = 2048

    with pytest.raises(KnowledgeImportError, match="larger than 2048 bytes"):
        knowledge_import(data=b"# Q\n" + b"a" * 3000, filename="kb.md", user=page_user("Admin"))
