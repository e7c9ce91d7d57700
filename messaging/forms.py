"""Forms of the messaging admin: the Operators' send form (through message_send and its gate) and the
template editor (placeholders checked the way the gate reads them)."""

from __future__ import annotations

from django import forms

from contacts.models import Channel
from messaging.channels.whatsapp import MEDIA_TYPES
from messaging.models import TemplateStatus, WhatsAppTemplate
from messaging.whatsapp_templates import TemplateDefinitionError, template_placeholders
from wecare import jsonsafe


class MessageSendForm(forms.Form):
    contact_id = forms.UUIDField(label="Contact id", help_text="The contactId (UUID) of an active contact.")
    channel = forms.ChoiceField(choices=Channel.choices)
    text = forms.CharField(
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Text, SMS, caption or email text.",
    )
    media = forms.FileField(required=False, help_text="WhatsApp image, video, audio, document or sticker.")
    media_type = forms.ChoiceField(
        required=False, choices=[("", "(from the file's type)")] + [(t, t) for t in MEDIA_TYPES]
    )
    template = forms.ModelChoiceField(
        required=False,
        queryset=WhatsAppTemplate.objects.filter(status=TemplateStatus.APPROVED),
        help_text="An approved WhatsApp template.",
    )
    template_parameters = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text='JSON: ["Asha", "1042"] for {{1}} {{2}}, or {"name": "Asha"} for {{name}}.',
    )
    subject = forms.CharField(required=False, max_length=998, strip=False)
    html = forms.CharField(required=False, strip=False, widget=forms.Textarea(attrs={"rows": 6}), label="HTML")
    origination_phone_number_id = forms.CharField(
        required=False, help_text="WhatsApp: leave empty for the contact's usual number."
    )

    def clean_template_parameters(self):
        raw = self.cleaned_data["template_parameters"].strip()
        if not raw:
            return None
        try:
            value = jsonsafe.loads(raw)
        except ValueError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}") from exc
        if not isinstance(value, list | dict):
            raise forms.ValidationError("Give a JSON list or object.")
        return value

    def clean(self):
        data = super().clean()
        if data.get("template") and (data.get("text") or data.get("media")):
            raise forms.ValidationError("Give text or media, or a template: not both.")
        return data


class WhatsAppTemplateForm(forms.ModelForm):
    class Meta:
        model = WhatsAppTemplate
        fields = [
            "name",
            "language",
            "category",
            "status",
            "waba_id",
            "meta_template_id",
            "body",
            "components",
        ]

    def clean(self):
        data = super().clean()
        try:
            fmt, names = template_placeholders(data.get("body", ""))
        except TemplateDefinitionError as exc:
            raise forms.ValidationError({"body": str(exc)}) from exc
        self.instance.parameter_format = fmt
        self.instance.body_parameters = names
        return data
