from __future__ import annotations

from contacts.urls import OptionalSlashRouter
from webforms.api import FormViewSet

router = OptionalSlashRouter()
router.register("forms", FormViewSet, basename="form")

urlpatterns = router.urls
