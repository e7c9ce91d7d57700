from __future__ import annotations

from audiences.api import SegmentViewSet
from contacts.urls import OptionalSlashRouter

router = OptionalSlashRouter()
router.register("segments", SegmentViewSet, basename="segment")

urlpatterns = router.urls
