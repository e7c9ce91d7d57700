from __future__ import annotations

import secrets

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from accounts.roles import ADMIN
from accounts.services import user_create, user_set_role

LOCAL_LOGIN_EMAIL = "admin@wecare.local"


class Command(BaseCommand):
    help = (
        f"ENVIRONMENT=local only: make sure the local sign-in {LOCAL_LOGIN_EMAIL} (role Admin) exists. "
        "A new user gets a random password, printed once; --reset-password prints a new one."
    )

    def add_arguments(self, parser):
        parser.add_argument("--reset-password", action="store_true", help="Give the user a new random password.")

    def handle(self, *args, reset_password: bool, **options):
        # A known login with a printed password is a hole anywhere but on a developer's own machine.
        if settings.ENVIRONMENT != "local":
            raise CommandError(
                f"ensure_local_login runs only with ENVIRONMENT=local (this is ENVIRONMENT={settings.ENVIRONMENT}): "
                "create real users with `python manage.py add_user EMAIL --role ROLE`."
            )
        password = secrets.token_urlsafe(12)
        user = User.objects.filter(email__iexact=LOCAL_LOGIN_EMAIL).first()
        if user is None:
            user_create(email=LOCAL_LOGIN_EMAIL, role=ADMIN, password=password)
        else:
            user_set_role(user=user, role=ADMIN)
            if not reset_password:
                self.stdout.write(
                    f"Local login: {LOCAL_LOGIN_EMAIL} (password unchanged; `make password` prints a new one)"
                )
                return
            user.set_password(password)
            user.save(update_fields=["password"])
        self.stdout.write(self.style.SUCCESS(f"Local login: {LOCAL_LOGIN_EMAIL}  password: {password}"))
