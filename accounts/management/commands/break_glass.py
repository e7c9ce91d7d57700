from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from accounts.services import user_set_break_glass


class Command(BaseCommand):
    help = (
        "Allow or stop a superuser's password sign-in where Cognito is the way in: "
        "break_glass EMAIL --enable | --disable. Audited; Admins can do the same in the admin."
    )

    def add_arguments(self, parser):
        parser.add_argument("email")
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument("--enable", action="store_true")
        group.add_argument("--disable", action="store_true")

    def handle(self, *args, email: str, enable: bool, disable: bool, **options):
        user = User.objects.filter(email__iexact=email.strip()).first()
        if user is None:
            raise CommandError(f"No user with email {email}.")
        try:
            user_set_break_glass(user=user, enabled=enable, by=None)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        state = "enabled" if enable else "disabled"
        self.stdout.write(self.style.SUCCESS(f"Break-glass password sign-in {state} for {user.email}."))
