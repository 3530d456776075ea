from __future__ import annotations

from django import forms

from accounts.services import ADDRESS_FIELDS, COUNTRIES, default_country
from kernel.money import round_money
from shop.templatetags.shop_tags import money

BILLING_MARKER = "billing_asked"  # a hidden field of the page: the billing box was shown, so its absence is "unticked"
BILLING_FIELDS = ("full_name", "line1", "line2", "postal_code", "city", "region", "country")
REQUIRED = {
    "full_name": "Enter the full name of the person the parcel is for.",
    "line1": "Enter the street and house number.",
    "postal_code": "Enter the postcode.",
    "city": "Enter the town or city.",
}
BILLING_REQUIRED = {
    "country": "Choose the billing country.",
    "full_name": "Enter the name the invoice is made out to.",
    "line1": "Enter the billing street and house number.",
    "postal_code": "Enter the billing postcode.",
    "city": "Enter the billing town or city.",
}


class MethodRadioSelect(forms.RadioSelect):
    """Radio buttons that carry, for each delivery method, the figures the order summary shows with it (data-*
    attributes the server renders), so the summary follows the choice at once."""

    def __init__(self, *args, option_data=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.option_data = option_data or {}

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        option["attrs"] = {**option["attrs"], **self.option_data.get(str(value), {})}
        return option


def _money(amount, currency: str) -> str:
    return money(round_money(amount, currency), currency)


def _text(label: str, max_length: int, autocomplete: str, **attrs: str) -> forms.CharField:
    widget = forms.TextInput(attrs={"autocomplete": autocomplete, **attrs})
    return forms.CharField(label=label, max_length=max_length, required=False, widget=widget,
                           error_messages={"max_length": f"Use at most {max_length} characters."})  # fmt: skip


def _country(autocomplete: str, *, required: bool = True) -> forms.ChoiceField:
    return forms.ChoiceField(
        label="Country", choices=COUNTRIES, required=required,
        widget=forms.Select(attrs={"autocomplete": autocomplete}),
        error_messages={"required": "Choose the country.",
                        "invalid_choice": "Choose one of the countries we deliver to."},
    )  # fmt: skip


class CheckoutForm(forms.Form):
    email = forms.EmailField(
        label="Email address", max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"}),
        error_messages={"required": "Enter your email address: the confirmation goes there.",
                        "invalid": "Enter a valid email address, like name@example.com."},
    )  # fmt: skip
    saved_address = forms.ChoiceField(
        label="Deliver to", required=False, widget=forms.RadioSelect,
        error_messages={"invalid_choice": "Choose one of your addresses, or a new address."},
    )  # fmt: skip
    full_name = _text("Full name", 150, "shipping name")
    line1 = _text("Address", 200, "shipping address-line1")
    line2 = _text("Address line 2", 200, "shipping address-line2")
    postal_code = _text("Postcode", 20, "shipping postal-code")
    city = _text("City", 100, "shipping address-level2")
    region = _text("Region or state", 100, "shipping address-level1")
    country = _country("shipping country")
    phone = _text("Phone (for the courier)", 30, "shipping tel", type="tel")
    save_address = forms.BooleanField(label="Save this address to my address book", required=False, initial=True)
    shipping_method = forms.ChoiceField(
        label="Delivery method", error_messages={"required": "Choose how your order is delivered.",
                                                 "invalid_choice": "Choose one of the delivery methods shown."},
    )  # fmt: skip
    billing_same = forms.BooleanField(label="Billing address same as delivery", required=False, initial=True)
    billing_full_name = _text("Full name", 150, "billing name")
    billing_line1 = _text("Address", 200, "billing address-line1")
    billing_line2 = _text("Address line 2", 200, "billing address-line2")
    billing_postal_code = _text("Postcode", 20, "billing postal-code")
    billing_city = _text("City", 100, "billing address-level2")
    billing_region = _text("Region or state", 100, "billing address-level1")
    billing_country = _country("billing country", required=False)  # required when it is asked for (clean)

    def __init__(self, *args, addresses=(), quotes=(), signed_in: bool = False, **kwargs) -> None:
        """addresses: the customer's address book; quotes: the cart priced with each delivery method (shop's
        checkout_options), which the method choices show and carry for the summary."""
        super().__init__(*args, **kwargs)
        if self.is_bound and BILLING_MARKER not in self.data:
            # Not our form's post (the page always sends the marker): an unticked box cannot be told from a box
            # that was never there, so the invoice goes to the delivery address, as the box's default says.
            self.data = self.data.copy()
            self.data["billing_same"] = "on"
        self.addresses = {str(a.id): a for a in addresses}
        choices = [(key, ", ".join(a.lines)) for key, a in self.addresses.items()]
        self.fields["saved_address"].choices = [*choices, ("new", "A new address")]
        if not addresses:  # nothing to choose from: always a new address, whatever a tampered form says
            self.fields["saved_address"] = forms.CharField(required=False, widget=forms.HiddenInput())
        if not signed_in:
            del self.fields["save_address"]  # a guest has no address book
        for name in ("country", "billing_country"):
            self.fields[name].initial = default_country()
        data = {}
        for quote in quotes:
            m, currency = quote.shipping, quote.currency
            data[m.code] = {"data-shipping": _money(m.price, currency) if m.price else "Free",
                            "data-method": m.name, "data-total": _money(quote.total, currency),
                            "data-tax": _money(quote.tax, currency)}  # fmt: skip
        self.fields["shipping_method"].widget = MethodRadioSelect(option_data=data)
        self.fields["shipping_method"].choices = [
            (q.shipping.code, f"{q.shipping.name} ({q.shipping.days}): "
                              f"{_money(q.shipping.price, q.currency) if q.shipping.price else 'free'}")
            for q in quotes
        ]  # fmt: skip

    @property
    def address_fields(self):
        return [self[name] for name in ADDRESS_FIELDS]

    @property
    def billing_fields(self):
        return [self[f"billing_{name}"] for name in BILLING_FIELDS]

    def clean(self) -> dict:
        cleaned = super().clean()
        choice = self._choice()
        if choice == "new" and "saved_address" not in self.errors:
            for name, message in REQUIRED.items():
                if not (cleaned.get(name) or "").strip():
                    self.add_error(name, message)
        if not cleaned.get("billing_same"):
            for name, message in BILLING_REQUIRED.items():
                if not (cleaned.get(f"billing_{name}") or "").strip():
                    self.add_error(f"billing_{name}", message)
        return cleaned

    def _choice(self) -> str:
        """The saved address's id, or "new"."""
        choice = self.cleaned_data.get("saved_address") or "new"
        return choice if choice in self.addresses else "new"

    def uses_new_address(self) -> bool:
        return self._choice() == "new"

    def address(self) -> dict:
        choice = self._choice()
        if choice != "new":
            saved = self.addresses[choice]
            return {name: getattr(saved, name) for name in ADDRESS_FIELDS}
        return {name: (self.cleaned_data.get(name) or "").strip() for name in ADDRESS_FIELDS}

    def billing_address(self) -> dict | None:
        """None when the invoice goes to the delivery address."""
        if self.cleaned_data.get("billing_same"):
            return None
        fields = {name: (self.cleaned_data.get(f"billing_{name}") or "").strip() for name in BILLING_FIELDS}
        return {**fields, "phone": ""}

    def remember_address(self) -> bool:
        """Keep the new address in the customer's address book once the order is placed."""
        return self.uses_new_address() and bool(self.cleaned_data.get("save_address"))
