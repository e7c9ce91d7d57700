"""The local knowledge base: BM25 ranking (bm25s) of the entries Admins keep, and their import.

The index is built once per process and rebuilt only when the entries change (their count or
latest update moves), so a suggestion costs one small aggregate query plus a sparse lookup.
"""

from __future__ import annotations

import csv
import io
import re
import threading
from dataclasses import dataclass

import bm25s
import Stemmer
from bm25s.stopwords import STOPWORDS_EN_PLUS
from bm25s.tokenization import Tokenizer
from django.conf import settings
from django.db import transaction
from django.db.models import Count, Max

from automation.models import KnowledgeEntry

_STEMMER = Stemmer.Stemmer("english")
# The longer English list: customers write "do you", "can I", "my" in nearly every message.
_STOPWORDS = list(STOPWORDS_EN_PLUS)


@dataclass(frozen=True)
class KnowledgeHit:
    entry_id: int
    question: str
    answer: str
    score: float


class _Index:
    def __init__(self, version: tuple, entries: list[tuple[int, str, str, str]]):
        self.version = version
        self.entries = entries
        self.tokenizer = Tokenizer(stopwords=_STOPWORDS, stemmer=_STEMMER)
        self.retriever = None
        if entries:
            corpus = [f"{question}\n{question}\n{tags}\n{answer}" for _, question, answer, tags in entries]
            ids = self.tokenizer.tokenize(corpus, return_as="ids", show_progress=False)
            self.retriever = bm25s.BM25()
            self.retriever.index(ids, show_progress=False)

    def search(self, text: str, k: int) -> list[KnowledgeHit]:
        if self.retriever is None or not text.strip():
            return []
        query = self.tokenizer.tokenize([text], update_vocab=False, return_as="ids", show_progress=False)
        k = min(k, len(self.entries))
        documents, scores = self.retriever.retrieve(query, k=k, show_progress=False)
        hits = []
        for position, score in zip(documents[0], scores[0], strict=True):
            if score <= 0:
                continue  # no word in common
            entry_id, question, answer, _ = self.entries[int(position)]
            hits.append(KnowledgeHit(entry_id=entry_id, question=question, answer=answer, score=float(score)))
        return hits


_index: _Index | None = None
_lock = threading.Lock()


def _version() -> tuple:
    row = KnowledgeEntry.objects.aggregate(n=Count("id"), last=Max("updated_at"), top=Max("id"))
    return row["n"], row["last"], row["top"]


def knowledge_index() -> _Index:
    """The BM25 index of the current entries (rebuilt when they changed)."""
    global _index
    version = _version()
    current = _index
    if current is not None and current.version == version:
        return current
    with _lock:
        if _index is None or _index.version != version:
            rows = list(KnowledgeEntry.objects.order_by("id").values_list("id", "question", "answer", "tags"))
            _index = _Index(version, rows)
        return _index


def knowledge_search(text: str, *, k: int = 3) -> list[KnowledgeHit]:
    """The entries best matching ``text``, best first (only those sharing a word with it)."""
    return knowledge_index().search(text, k)


def knowledge_best(text: str) -> KnowledgeHit | None:
    """The best entry if its score reaches AI_KB_MIN_SCORE; below it there is no suggestion."""
    hits = knowledge_search(text, k=1)
    if hits and hits[0].score >= settings.AI_KB_MIN_SCORE:
        return hits[0]
    return None


# --- Import ---------------------------------------------------------------------------------------


class KnowledgeImportError(ValueError):
    pass


_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_TAGS = re.compile(r"^tags\s*:\s*(.*)$", re.IGNORECASE)
CSV_COLUMNS = ("question", "answer", "tags")


def _parse_markdown(text: str) -> list[dict]:
    """The headings of the most used level are questions; the text under each (to the next heading)
    its answer. Other headings (a document title, section names) and their text are not entries.

    A line ``Tags: a, b`` under a question gives the entry's tags.
    """
    lines = text.splitlines()
    levels = [len(m.group(1)) for m in map(_HEADING.match, lines) if m]
    if not levels:
        return []
    # The most frequent level; on a tie the deeper one (a title is shallower than its questions).
    entry_level = max(set(levels), key=lambda level: (levels.count(level), level))
    entries: list[dict] = []
    current: dict | None = None
    for line in lines:
        heading = _HEADING.match(line)
        if heading:
            current = None
            if len(heading.group(1)) == entry_level:
                current = {"question": heading.group(2), "answer_lines": [], "tags": ""}
                entries.append(current)
            continue
        if current is None:
            continue
        tags = _TAGS.match(line.strip())
        if tags:
            current["tags"] = tags.group(1).strip()
            continue
        current["answer_lines"].append(line)
    parsed = []
    for entry in entries:
        answer = "\n".join(entry.pop("answer_lines")).strip()
        if answer:
            parsed.append({**entry, "answer": answer})
    return parsed


def _parse_csv(text: str) -> list[dict]:
    reader = csv.DictReader(io.StringIO(text))
    columns = [c.strip().lower() for c in reader.fieldnames or []]
    if "question" not in columns or "answer" not in columns:
        raise KnowledgeImportError("The CSV needs a header row with the columns question and answer (tags optional).")
    reader.fieldnames = columns
    parsed = []
    for number, row in enumerate(reader, start=2):
        question, answer = (row.get("question") or "").strip(), (row.get("answer") or "").strip()
        if not question and not answer:
            continue
        if not question or not answer:
            raise KnowledgeImportError(f"Line {number}: both question and answer are needed.")
        parsed.append({"question": question, "answer": answer, "tags": (row.get("tags") or "").strip()})
    return parsed


def knowledge_import(*, data: bytes, filename: str, user, replace: bool = False) -> int:
    """Add the entries of a Markdown (.md) or CSV (.csv) file; all or nothing. Returns how many.

    Bad input is refused with a sentence saying why, and nothing is written.
    """
    from accounts.services import audit_record

    if len(data) > settings.AI_KB_IMPORT_MAX_BYTES:
        raise KnowledgeImportError(f"The file is larger than {settings.AI_KB_IMPORT_MAX_BYTES} bytes.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise KnowledgeImportError("The file is not UTF-8 text.") from None
    name = filename.lower()
    if name.endswith((".md", ".markdown")):
        parsed = _parse_markdown(text)
    elif name.endswith(".csv"):
        parsed = _parse_csv(text)
    else:
        raise KnowledgeImportError("Import a Markdown (.md) or CSV (.csv) file.")
    if not parsed:
        raise KnowledgeImportError("The file has no entries (a heading with text under it, or a CSV row).")
    with transaction.atomic():
        if replace:
            KnowledgeEntry.objects.all().delete()
        KnowledgeEntry.objects.bulk_create(
            KnowledgeEntry(question=e["question"], answer=e["answer"], tags=e["tags"][:500]) for e in parsed
        )
        audit_record(
            user=user,
            action="automation.knowledge_import",
            resource_type="knowledge_base",
            details={"filename": filename[:200], "entries": len(parsed), "replace": replace},
        )
    return len(parsed)
