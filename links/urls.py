from __future__ import annotations

from bulk.urls import OptionalSlashRouter
from links.api import ShortLinkViewSet

router = OptionalSlashRouter()
router.register("links", ShortLinkViewSet, basename="link")

urlpatterns = router.urls
