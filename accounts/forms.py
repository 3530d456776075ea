from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm

from accounts import throttle
from accounts.models import User
from accounts.services import COUNTRIES, default_country


def client_ip(request) -> str:
    """The visitor's address. Behind TRUSTED_PROXY_COUNT proxies it is read from X-Forwarded-For (the entry the
    nearest trusted proxy added), never from what the client itself sent."""
    proxies = settings.TRUSTED_PROXY_COUNT
    forwarded = [p.strip() for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if p.strip()]
    if proxies and len(forwarded) >= proxies:
        return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR", "") or "unknown"


class SignupForm(forms.Form):
    email = forms.EmailField(
        label="Email address", max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )
    full_name = forms.CharField(label="Your name", max_length=150, required=False,
                                widget=forms.TextInput(attrs={"autocomplete": "name"}))  # fmt: skip
    password1 = forms.CharField(label="Password", strip=False,
                                widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
                                help_text=password_validation.password_validators_help_text_html())  # fmt: skip
    password2 = forms.CharField(label="Password again", strip=False,
                                widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))  # fmt: skip

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("An account with this email address exists already. Sign in instead?")
        return email

    def clean(self) -> dict:
        cleaned = super().clean()
        first, second = cleaned.get("password1"), cleaned.get("password2")
        if first and second and first != second:
            self.add_error("password2", "The two passwords are not the same.")
        elif first:
            candidate = User(email=cleaned.get("email", ""), full_name=cleaned.get("full_name", ""))
            try:
                password_validation.validate_password(first, candidate)
            except forms.ValidationError as error:
                self.add_error("password1", error)
        return cleaned


class SignInForm(AuthenticationForm):
    """Django's sign-in form, throttled per account and per IP address."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "That email address and password do not match an account.",
    }

    def clean(self) -> dict:
        email = self.data.get("username", "")
        ip = client_ip(self.request) if self.request else "unknown"
        try:
            throttle.attempt(email, ip)  # takes a slot before the password is checked, atomically
        except throttle.Throttled as exc:
            raise forms.ValidationError(exc.message, code="throttled") from None
        cleaned = super().clean()  # a wrong password raises here, and the slot stays taken: a failure
        if self.user_cache is not None:
            throttle.succeeded(email, ip)
        else:  # a field was left empty, so no password was checked; that must not clear the failures either
            throttle.not_checked(email, ip)
        return cleaned


class ProfileForm(forms.Form):
    full_name = forms.CharField(label="Your name", max_length=150, required=False)


class AddressForm(forms.Form):
    full_name = forms.CharField(label="Full name", max_length=150)
    line1 = forms.CharField(label="Address", max_length=200)
    line2 = forms.CharField(label="Address line 2", max_length=200, required=False)
    postal_code = forms.CharField(label="Postcode", max_length=20)
    city = forms.CharField(label="City", max_length=100)
    region = forms.CharField(label="Region or state", max_length=100, required=False)
    country = forms.ChoiceField(label="Country", choices=COUNTRIES)
    phone = forms.CharField(label="Phone", max_length=30, required=False)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Without it the list started at its first country, and a Berlin address was saved as Austria's.
        self.fields["country"].initial = default_country()


class DeleteAccountForm(forms.Form):
    password = forms.CharField(label="Your password, to confirm", strip=False, widget=forms.PasswordInput)

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise forms.ValidationError("That is not your password.")
        return password
