from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts.api import MeView
from accounts.views import SignInView, SignOutView, admin_login_redirect
from links import views as link_views
from wecare.health import healthz, liveness

admin.site.site_header = "WECARE.DIGITAL"
admin.site.site_title = "WECARE.DIGITAL"
admin.site.index_title = "Administration"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("healthz/live", liveness, name="healthz-live"),
    path("healthz/ready", healthz, name="healthz-ready"),
    # Sign-in and sign-out go through one place (Cognito where configured), the admin's included.
    path("admin/login/", admin_login_redirect),
    path("admin/logout/", SignOutView.as_view()),
    path("admin/", admin.site.urls),
    path("accounts/login/", SignInView.as_view(), name="login"),
    path("accounts/logout/", SignOutView.as_view(), name="logout"),
    path("oidc/", include("wecare.oidc_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/me/", MeView.as_view(), name="api-me"),
    path("", include("messaging.urls_inbound")),  # /webhooks/sns/, /api/dlq/{queue}/replay
    path("api/", include("contacts.urls")),
    path("api/", include("bulk.urls")),  # /api/bulk/jobs/...
    path("api/", include("audiences.urls")),  # /api/segments/...
    path("api/", include("messaging.urls")),  # /api/messages/...
    path("api/", include("automation.urls")),  # /api/ai/suggestions/...
    path("api/", include("links.urls")),  # /api/links/...
    # The redirect (production serves it before Django: wecare.wsgi, links.redirect).
    path("l/<str:slug>", link_views.follow, name="link-follow"),
    path("l/<str:slug>/<str:token>", link_views.follow, name="link-follow-personal"),
    path("api/", include("webforms.urls")),  # /api/forms/...
    path("f/", include("webforms.public_urls")),  # public forms, no sign-in
    path("", include("wecare.page_urls")),
]
