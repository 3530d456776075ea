from __future__ import annotations

from django import forms

from accounts.services import ADDRESS_FIELDS, COUNTRIES


class CheckoutForm(forms.Form):
    email = forms.EmailField(label="Email address", widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    saved_address = forms.ChoiceField(label="Deliver to", required=False, widget=forms.RadioSelect)
    full_name = forms.CharField(label="Full name", max_length=150, required=False)
    line1 = forms.CharField(label="Address", max_length=200, required=False)
    line2 = forms.CharField(label="Address line 2", max_length=200, required=False)
    postal_code = forms.CharField(label="Postcode", max_length=20, required=False)
    city = forms.CharField(label="City", max_length=100, required=False)
    region = forms.CharField(label="Region or state", max_length=100, required=False)
    country = forms.ChoiceField(label="Country", choices=COUNTRIES, initial="DE")
    phone = forms.CharField(label="Phone (for the courier)", max_length=30, required=False)
    shipping_method = forms.ChoiceField(label="Delivery", widget=forms.RadioSelect)

    def __init__(self, *args, addresses=(), methods=(), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.addresses = {str(a.id): a for a in addresses}
        choices = [(key, ", ".join(a.lines)) for key, a in self.addresses.items()]
        self.fields["saved_address"].choices = [*choices, ("new", "A new address")]
        if not addresses:
            self.fields["saved_address"].widget = forms.HiddenInput()
        self.fields["shipping_method"].choices = [
            (m.code, f"{m.name} ({m.days}): {'free' if not m.price else f'€{m.price}'}") for m in methods
        ]

    def clean(self) -> dict:
        cleaned = super().clean()
        choice = cleaned.get("saved_address") or "new"
        if choice != "new":
            if choice not in self.addresses:
                self.add_error("saved_address", "Choose one of your addresses.")
            return cleaned
        for name in ("full_name", "line1", "postal_code", "city"):
            if not cleaned.get(name):
                self.add_error(name, "This field is required.")
        return cleaned

    def address(self) -> dict:
        choice = self.cleaned_data.get("saved_address") or "new"
        if choice != "new":
            saved = self.addresses[choice]
            return {name: getattr(saved, name) for name in ADDRESS_FIELDS}
        return {name: self.cleaned_data.get(name, "") for name in ADDRESS_FIELDS}
