"""The form of the Link pages: it reads the request; links.services validate and decide."""

from __future__ import annotations

from django import forms


class LinkForm(forms.Form):
    destination = forms.CharField(max_length=2048, help_text="An http:// or https:// address.")
    slug = forms.CharField(
        required=False, max_length=64, help_text="Optional: leave empty for a generated one (7 characters)."
    )
    title = forms.CharField(required=False, max_length=200)
    utm_source = forms.CharField(required=False, max_length=100, label="UTM source")
    utm_medium = forms.CharField(required=False, max_length=100, label="UTM medium")
    utm_campaign = forms.CharField(required=False, max_length=100, label="UTM campaign")
    expires_at = forms.DateTimeField(
        required=False,
        label="Expires",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
        help_text="Optional. After this the link answers 'expired'.",
    )

    def utm(self) -> dict[str, str]:
        return {name: self.cleaned_data[name] for name in ("utm_source", "utm_medium", "utm_campaign")}
