from __future__ import annotations

from rest_framework.routers import SimpleRouter

from bulk.api import BulkJobViewSet

# "/?": with or without the trailing slash, like the contacts API.
router = SimpleRouter(trailing_slash="/?")
router.register("bulk/jobs", BulkJobViewSet, basename="bulk-job")

urlpatterns = router.urls
