from __future__ import annotations

from rest_framework.routers import SimpleRouter

from contacts.api import AttributeDefinitionViewSet, ContactViewSet, TagViewSet


class OptionalSlashRouter(SimpleRouter):
    """Routes that answer with and without the trailing slash: the seed's clients call
    ``/api/contacts/{contactId}/restore`` and ``.../consent-history`` without one, and a POST
    cannot follow APPEND_SLASH's redirect."""

    def __init__(self):
        super().__init__()
        self.trailing_slash = "/?"


router = OptionalSlashRouter()
router.register("contacts", ContactViewSet, basename="contact")
router.register("tags", TagViewSet, basename="tag")
router.register("attributes", AttributeDefinitionViewSet, basename="attribute")

urlpatterns = router.urls
