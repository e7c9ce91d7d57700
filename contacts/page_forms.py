"""Forms of the contact pages. They only read the request; contacts.services decide and validate."""

from __future__ import annotations

from django import forms

OPT_IN_LABELS = {
    "opt_in_whatsapp": "Opted in to WhatsApp",
    "opt_in_sms": "Opted in to SMS",
    "opt_in_email": "Opted in to Email",
    "opt_in_voice": "Opted in to Voice calls",
    "opt_in_rcs": "Opted in to RCS",
}
IDENTITY_FIELDS = ("name", "phone", "email")
OPT_IN_FIELDS = tuple(OPT_IN_LABELS)


class ContactForm(forms.Form):
    name = forms.CharField(required=False, max_length=200)
    phone = forms.CharField(
        required=False, max_length=40, help_text="Any usual form; stored as E.164, e.g. +919876543210."
    )
    email = forms.CharField(required=False, max_length=254, widget=forms.EmailInput)
    opt_in_whatsapp = forms.BooleanField(required=False, label=OPT_IN_LABELS["opt_in_whatsapp"])
    opt_in_sms = forms.BooleanField(required=False, label=OPT_IN_LABELS["opt_in_sms"])
    opt_in_email = forms.BooleanField(required=False, label=OPT_IN_LABELS["opt_in_email"])
    opt_in_voice = forms.BooleanField(required=False, label=OPT_IN_LABELS["opt_in_voice"])
    opt_in_rcs = forms.BooleanField(required=False, label=OPT_IN_LABELS["opt_in_rcs"])

    def opt_in_fields(self):
        return [self[name] for name in OPT_IN_FIELDS]


class ContactEditForm(ContactForm):
    """The edit form remembers what the page showed, so that only what the operator changed is sent.

    Consent matters most: if a contact opted out (say, by replying STOP) while the page was open,
    saving the page with its stale, still-ticked box must not opt them back in.
    """

    shown_name = forms.CharField(required=False, widget=forms.HiddenInput)
    shown_phone = forms.CharField(required=False, widget=forms.HiddenInput)
    shown_email = forms.CharField(required=False, widget=forms.HiddenInput)
    shown_opt_in_whatsapp = forms.CharField(required=False, widget=forms.HiddenInput)
    shown_opt_in_sms = forms.CharField(required=False, widget=forms.HiddenInput)
    shown_opt_in_email = forms.CharField(required=False, widget=forms.HiddenInput)
    shown_opt_in_voice = forms.CharField(required=False, widget=forms.HiddenInput)
    shown_opt_in_rcs = forms.CharField(required=False, widget=forms.HiddenInput)

    @classmethod
    def initial_for(cls, contact) -> dict:
        initial = {
            "name": contact.name,
            "phone": contact.phone or "",
            "email": contact.email or "",
            **{field: getattr(contact, field) for field in OPT_IN_FIELDS},
        }
        for field in IDENTITY_FIELDS:
            initial[f"shown_{field}"] = initial[field]
        for field in OPT_IN_FIELDS:
            initial[f"shown_{field}"] = "true" if initial[field] else "false"
        return initial

    def changes(self) -> dict:
        """The fields the operator changed on the page, as data for contacts.services.contact_update.

        A field left as shown is not sent, so a value stored meanwhile (an opt-out by STOP, say)
        stands. An opt-in changed on the page and meanwhile too can only have moved the same way.
        """
        data: dict = {}
        for field in (*IDENTITY_FIELDS, *OPT_IN_FIELDS):
            value = self.cleaned_data[field]
            shown = self.cleaned_data[f"shown_{field}"]
            if field in OPT_IN_FIELDS:
                if value != (shown == "true"):
                    data[field] = value
            elif value.strip() != shown.strip():
                # An emptied phone or email is removed (None); the services refuse a contact with neither.
                data[field] = value.strip() if field == "name" else (value.strip() or None)
        return data


class ImportForm(forms.Form):
    file = forms.FileField(label="CSV file", help_text="With a header row; UTF-8 or UTF-16, any of , ; or tab.")
    dry_run = forms.BooleanField(required=False, label="Only check the file; change nothing")
