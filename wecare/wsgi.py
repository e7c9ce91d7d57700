"""
WSGI config for wecare project.

It exposes the WSGI callable as a module-level variable named ``application``.

For more information on this file, see
https://docs.djangoproject.com/en/5.2/howto/deployment/wsgi/
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wecare.settings")

django_application = get_wsgi_application()


def application(environ, start_response):
    """Django, with one fast door in front: link redirects (/l/...) skip the middleware (links.redirect)."""
    if is_redirect_request(environ):
        return wsgi_redirect(environ, start_response)
    return django_application(environ, start_response)


from links.redirect import is_redirect_request, wsgi_redirect  # noqa: E402 - needs Django set up

# At start, not at import of settings: with SEND_MODE=LIVE the credentials must be AWS_ACCOUNT_ID's.
from wecare.aws import live_account_verify  # noqa: E402 - needs Django set up

live_account_verify()
