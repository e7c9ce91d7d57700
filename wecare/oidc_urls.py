"""URLs of the OIDC sign-in, mounted at /oidc/: the provider's callback is /oidc/callback/."""

from django.urls import path

from accounts.views import SignOutView
from wecare.oidc_views import OIDCAuthenticateView, OIDCCallbackView

urlpatterns = [
    path("callback/", OIDCCallbackView.as_view(), name="oidc_authentication_callback"),
    path("authenticate/", OIDCAuthenticateView.as_view(), name="oidc_authentication_init"),
    path("logout/", SignOutView.as_view(), name="oidc_logout"),
]
