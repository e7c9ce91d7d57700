"""Django forms of the Forms module: the public form a visitor fills in (built from one FormVersion) and
the builder staff use. They read the request; webforms.services decide and store."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from contacts.attributes import attribute_definitions, attribute_value_clean
from contacts.models import AttributeType, Channel
from contacts.phones import normalize_phone
from webforms.models import Ask, FormVersion

HONEYPOT = "website"  # a field people never see: only a robot fills it in
TOKEN = "form_token"  # noqa: S105 - a field name, not a secret


class PublicForm(forms.Form):
    """The visitor's form: the fields a version asks for and one checkbox per channel it offers."""

    def __init__(self, *args, version: FormVersion, **kwargs):
        super().__init__(*args, **kwargs)
        self.version = version
        asks = (("name", version.ask_name), ("phone", version.ask_phone), ("email", version.ask_email))
        for field, ask in asks:
            if ask == Ask.OFF:
                continue
            required = ask == Ask.REQUIRED
            if field == "name":
                self.fields["name"] = forms.CharField(label="Name", required=required, max_length=200)
            elif field == "phone":
                self.fields["phone"] = forms.CharField(
                    label="Phone number",
                    required=required,
                    max_length=40,
                    help_text="With the country code if outside India, e.g. +44 7700 900123.",
                    widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel"}),
                )
            else:
                self.fields["email"] = forms.CharField(
                    label="Email address",
                    required=required,
                    max_length=254,
                    widget=forms.EmailInput(attrs={"autocomplete": "email"}),
                )
        self.definitions = attribute_definitions()
        for name in version.attributes:
            definition = self.definitions.get(name)
            if definition is None:  # removed since the version was written: not asked any more
                continue
            label = definition.label or name.replace("_", " ").capitalize()
            if definition.type == AttributeType.CHOICE:
                field = forms.ChoiceField(
                    label=label, required=False, choices=[("", "—"), *[(c, c) for c in definition.choices]]
                )
            elif definition.type == AttributeType.BOOLEAN:
                field = forms.ChoiceField(
                    label=label, required=False, choices=[("", "—"), ("yes", "Yes"), ("no", "No")]
                )
            elif definition.type == AttributeType.DATE:
                field = forms.CharField(label=label, required=False, widget=forms.DateInput(attrs={"type": "date"}))
            else:
                field = forms.CharField(label=label, required=False, max_length=500)
            self.fields[f"attr_{name}"] = field
        for channel, wording in version.consent_wording().items():
            self.fields[f"consent_{channel}"] = forms.BooleanField(required=False, label=wording)
        self.fields[HONEYPOT] = forms.CharField(
            required=False,
            label="Leave this field empty",
            widget=forms.TextInput(attrs={"tabindex": "-1", "autocomplete": "off"}),
        )
        self.fields[TOKEN] = forms.CharField(required=False, widget=forms.HiddenInput)

    def identity_fields(self):
        return [self[name] for name in ("name", "phone", "email") if name in self.fields]

    def attribute_fields(self):
        return [self[name] for name in self.fields if name.startswith("attr_")]

    def consent_fields(self):
        return [(name.removeprefix("consent_"), self[name]) for name in self.fields if name.startswith("consent_")]

    def is_robot(self) -> bool:
        return bool(self.data.get(HONEYPOT, "").strip())

    def clean_phone(self) -> str | None:
        value = self.cleaned_data.get("phone", "").strip()
        if not value:
            return None
        try:
            return normalize_phone(value)
        except ValidationError as exc:
            raise ValidationError(exc.messages) from None

    def clean_email(self) -> str | None:
        value = self.cleaned_data.get("email", "").strip().lower()
        if not value:
            return None
        try:
            validate_email(value)
        except ValidationError:
            raise ValidationError("Enter a valid email address, e.g. name@example.com.") from None
        return value

    def clean(self):
        data = super().clean()
        phone, email = data.get("phone"), data.get("email")
        for name in list(self.fields):
            if not name.startswith("attr_") or name in self.errors:
                continue
            value = data.get(name)
            if value in (None, ""):
                data[name] = None
                continue
            definition = self.definitions[name.removeprefix("attr_")]
            try:
                data[name] = attribute_value_clean(definition, value)
            except ValidationError as exc:
                self.add_error(name, [message.split(": ", 1)[-1] for message in exc.messages])
        if "phone" in self.errors or "email" in self.errors:
            return data
        if not phone and not email:
            self.add_error(None, "Please give a phone number or an email address so that we can reach you.")
        for channel, field in self.consent_fields():
            if not data.get(field.name):
                continue
            if channel != Channel.EMAIL and not phone:
                self.add_error("phone" if "phone" in self.fields else None,
                               f"{Channel(channel).label} needs your phone number.")  # fmt: skip
            if channel == Channel.EMAIL and not email:
                self.add_error("email" if "email" in self.fields else None, "Email needs your email address.")
        return data

    def ticked(self) -> list[str]:
        return [channel for channel, field in self.consent_fields() if self.cleaned_data.get(field.name)]

    def attributes(self) -> dict:
        return {
            name.removeprefix("attr_"): value
            for name, value in self.cleaned_data.items()
            if name.startswith("attr_") and value is not None
        }


ASK_CHOICES = Ask.choices


class FormBuilderForm(forms.Form):
    """What staff type to create or edit a form (services.form_create / form_update validate it)."""

    name = forms.CharField(max_length=200, help_text="For staff only.")
    slug = forms.SlugField(max_length=80, help_text="The public address: /f/<address>.")
    title = forms.CharField(max_length=200, help_text="The heading visitors see.")
    intro = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    ask_name = forms.ChoiceField(choices=ASK_CHOICES, initial=Ask.OPTIONAL, label="Name")
    ask_phone = forms.ChoiceField(choices=ASK_CHOICES, initial=Ask.OPTIONAL, label="Phone number")
    ask_email = forms.ChoiceField(choices=ASK_CHOICES, initial=Ask.OPTIONAL, label="Email address")
    attributes = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Contact attributes asked",
        help_text="Declared contact attributes; the answer fills the contact's attribute when it has none.",
    )
    consent_whatsapp = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="WhatsApp consent wording",
        help_text="Shown word for word next to the WhatsApp checkbox. Empty: no WhatsApp checkbox.",
    )
    consent_sms = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="SMS consent wording",
        help_text="Empty: no SMS checkbox.",
    )
    consent_email = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Email consent wording",
        help_text="Empty: no Email checkbox.",
    )
    consent_voice = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Voice call consent wording",
        help_text="Empty: no voice call checkbox.",
    )
    consent_rcs = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="RCS consent wording",
        help_text="Empty: no RCS checkbox.",
    )
    email_double_opt_in = forms.BooleanField(
        required=False,
        initial=True,
        label="Email double opt-in",
        help_text="Email consent only once the visitor follows the link in a confirmation email (recommended).",
    )
    is_published = forms.BooleanField(required=False, initial=True, label="Published")
    embed_origins = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Sites that may embed this form",
        help_text="One origin per line, e.g. https://www.example.org. Empty: the form cannot be framed.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["attributes"].choices = [(d.name, str(d)) for d in attribute_definitions().values()]

    def content(self) -> dict:
        from webforms.services import CONTENT_FIELDS

        return {field: self.cleaned_data[field] for field in CONTENT_FIELDS}

    def form_settings(self) -> dict:
        return {
            field: self.cleaned_data[field]
            for field in ("name", "slug", "email_double_opt_in", "is_published", "embed_origins")
        }
