"""Import the local knowledge base from a Markdown or CSV file (the admin's import, from a terminal)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from automation.knowledge import KnowledgeImportError, knowledge_import


class Command(BaseCommand):
    help = (
        "Add the entries of a Markdown file (each heading a question, the text under it the answer) "
        "or a CSV file (columns question, answer, tags) to the local knowledge base. All or nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--replace", action="store_true", help="delete every current entry first")
        parser.add_argument("--user", help="email of the user the audit trail names (default: none)")

    def handle(self, *args, file: Path, replace: bool, user: str | None, **options):
        actor = None
        if user:
            actor = User.objects.filter(email=user).first()
            if actor is None:
                raise CommandError(f"No user {user}.")
        if not file.is_file():
            raise CommandError(f"{file} is not a file.")
        if file.stat().st_size > settings.AI_KB_IMPORT_MAX_BYTES:
            raise CommandError(f"The file is larger than {settings.AI_KB_IMPORT_MAX_BYTES} bytes.")
        try:
            count = knowledge_import(data=file.read_bytes(), filename=file.name, user=actor, replace=replace)
        except KnowledgeImportError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{count} entries imported.")
