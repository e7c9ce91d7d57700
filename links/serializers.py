from __future__ import annotations

from rest_framework import serializers

from links.models import UTM_FIELDS, ShortLink


class ShortLinkSerializer(serializers.ModelSerializer):
    clicks = serializers.SerializerMethodField()
    short_path = serializers.SerializerMethodField()

    class Meta:
        model = ShortLink
        fields = [
            "id",
            "slug",
            "short_path",
            "destination",
            "title",
            *UTM_FIELDS,
            "enabled",
            "expires_at",
            "clicks",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        # The services validate (destination rules, free slug); the model's own validators would refuse
        # a taken slug before the service could say so in its words.
        extra_kwargs = {
            "slug": {"required": False, "allow_blank": True, "validators": []},
            "destination": {"validators": []},
        }

    def get_clicks(self, link: ShortLink) -> int | None:
        return getattr(link, "click_count", None)

    def get_short_path(self, link: ShortLink) -> str:
        return f"/l/{link.slug}"
