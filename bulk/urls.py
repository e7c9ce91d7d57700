from __future__ import annotations

from rest_framework.routers import SimpleRouter

from bulk.api import BulkJobViewSet


class OptionalSlashRouter(SimpleRouter):
    """Routes that answer with and without the trailing slash (a POST cannot follow APPEND_SLASH's redirect)."""

    def __init__(self):
        super().__init__()
        self.trailing_slash = "/?"


router = OptionalSlashRouter()
router.register("bulk/jobs", BulkJobViewSet, basename="bulk-job")

urlpatterns = router.urls
