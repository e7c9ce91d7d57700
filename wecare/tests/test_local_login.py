from __future__ import annotations

import io
import re

import pytest
from django.core.management import CommandError, call_command

from accounts.models import User
from wecare.management.commands.ensure_local_login import LOCAL_LOGIN_EMAIL

pytestmark = pytest.mark.django_db


def _run(*args) -> str:
    out = io.StringIO()
    call_command("ensure_local_login", *args, stdout=out)
    return out.getvalue()


def _password(output: str) -> str:
    match = re.search(r"password: (\S+)", output)
    assert match, output
    return match.group(1)


@pytest.mark.parametrize("environment", ["production", "staging", "preview", "test"])
def test_it_refuses_in_every_environment_but_local(settings, environment):
    settings.ENVIRONMENT = environment

    with pytest.raises(CommandError, match=f"only with ENVIRONMENT=local .*ENVIRONMENT={environment}"):
        _run()

    assert not User.objects.filter(email=LOCAL_LOGIN_EMAIL).exists()


def test_it_creates_an_admin_with_a_random_password_and_prints_both(settings):
    settings.ENVIRONMENT = "local"

    output = _run()

    user = User.objects.get(email=LOCAL_LOGIN_EMAIL)
    assert LOCAL_LOGIN_EMAIL in output
    assert user.check_password(_password(output))
    assert user.role == "Admin"
    assert user.is_staff and not user.is_superuser
    assert user.has_perm("django_celery_beat.change_periodictask")


def test_two_creations_get_different_passwords(settings):
    settings.ENVIRONMENT = "local"
    first = _password(_run())
    User.objects.filter(email=LOCAL_LOGIN_EMAIL).delete()

    assert _password(_run()) != first


def test_a_second_run_keeps_the_password(settings):
    settings.ENVIRONMENT = "local"
    password = _password(_run())

    output = _run()

    assert "password unchanged" in output
    assert User.objects.get(email=LOCAL_LOGIN_EMAIL).check_password(password)
    assert User.objects.filter(email=LOCAL_LOGIN_EMAIL).count() == 1


def test_reset_password_prints_a_new_one_and_the_old_one_stops_working(settings):
    settings.ENVIRONMENT = "local"
    old = _password(_run())

    new = _password(_run("--reset-password"))

    user = User.objects.get(email=LOCAL_LOGIN_EMAIL)
    assert new != old
    assert user.check_password(new)
    assert not user.check_password(old)


def test_it_puts_a_demoted_local_login_back_in_the_admin_role(settings):
    from accounts.services import user_set_role

    settings.ENVIRONMENT = "local"
    _run()
    user_set_role(user=User.objects.get(email=LOCAL_LOGIN_EMAIL), role="Viewer")

    _run()

    assert User.objects.get(email=LOCAL_LOGIN_EMAIL).role == "Admin"
