from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.roles import ROLES
from accounts.services import user_create


class Command(BaseCommand):
    help = "Create a user with a role: add_user EMAIL --role Operator [--password P]."

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--role", required=True, choices=ROLES)
        parser.add_argument("--password", default=None, help="Without it the user can sign in only through SSO.")

    def handle(self, *args, email, role, password, **options):
        try:
            user = user_create(email=email, role=role, password=password)
        except ValidationError as exc:
            raise CommandError(f"The password is refused: {' '.join(exc.messages)}") from exc
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"Created {user.email} with role {role}."))
