"""Account pages: sign up, sign in and out, password change and reset, profile, address book, delete account."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from accounts import services
from accounts.forms import AddressForm, DeleteAccountForm, ProfileForm, SignInForm, SignupForm
from accounts.models import User


def _next_url(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure()):
        return target
    return default


@require_http_methods(["GET", "HEAD", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("accounts:profile")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            info = services.user_register(
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password1"],
                full_name=form.cleaned_data["full_name"],
            )
        except services.EmailTaken:
            form.add_error("email", "An account with this email address exists already. Sign in instead?")
        else:
            login(request, User.objects.get(pk=info.id), backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, "Welcome! Your account is ready.")
            return redirect(_next_url(request, reverse("accounts:profile")))
    return render(request, "accounts/signup.html", {"form": form, "next": _next_url(request, "")})


class SignInView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = SignInForm
    redirect_authenticated_user = True


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    form = ProfileForm(request.POST or None, initial={"full_name": request.user.full_name})
    if request.method == "POST" and form.is_valid():
        services.user_update_profile(user_id=request.user.pk, full_name=form.cleaned_data["full_name"])
        messages.success(request, "Your details are saved.")
        return redirect("accounts:profile")
    return render(request, "accounts/profile.html", {"form": form})


@login_required
def addresses(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/addresses.html", {"addresses": services.address_list(user_id=request.user.pk)})


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def address_edit(request: HttpRequest, address_id: int | None = None) -> HttpResponse:
    initial = {}
    if address_id is not None:
        try:
            current = services.address_get(user_id=request.user.pk, address_id=address_id)
        except services.AddressNotFound:
            raise Http404("No such address in your address book") from None
        initial = {name: getattr(current, name) for name in services.ADDRESS_FIELDS}
    form = AddressForm(request.POST or None, initial=initial or {"full_name": request.user.full_name})
    if request.method == "POST" and form.is_valid():
        try:
            services.address_save(user_id=request.user.pk, address_id=address_id, **form.cleaned_data)
        except services.AddressNotFound:
            raise Http404("No such address in your address book") from None
        messages.success(request, "Address saved.")
        return redirect(_next_url(request, reverse("accounts:addresses")))
    return render(request, "accounts/address_form.html", {"form": form, "editing": address_id is not None})


@login_required
@require_POST
def address_delete(request: HttpRequest, address_id: int) -> HttpResponse:
    try:
        services.address_delete(user_id=request.user.pk, address_id=address_id)
    except services.AddressNotFound:
        raise Http404("No such address in your address book") from None
    messages.success(request, "Address removed.")
    return redirect("accounts:addresses")


@login_required
@require_POST
def address_default(request: HttpRequest, address_id: int) -> HttpResponse:
    kind = request.POST.get("kind")
    if kind not in ("shipping", "billing"):
        messages.error(request, "Choose shipping or billing.")
        return redirect("accounts:addresses")
    try:
        services.address_set_default(
            user_id=request.user.pk, address_id=address_id, shipping=kind == "shipping", billing=kind == "billing"
        )
    except services.AddressNotFound:
        raise Http404("No such address in your address book") from None
    messages.success(request, f"Default {kind} address changed.")
    return redirect("accounts:addresses")


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def delete_account(request: HttpRequest) -> HttpResponse:
    form = DeleteAccountForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        services.user_delete(user_id=request.user.pk)
        logout(request)
        messages.success(request, "Your account is deleted and your personal data erased.")
        return redirect("shop:home")
    return render(request, "accounts/delete.html", {"form": form})


password_change = auth_views.PasswordChangeView.as_view(
    template_name="accounts/form_page.html",
    success_url=reverse_lazy("accounts:password_change_done"),
    extra_context={"title": "Change your password", "button": "Change password"},
)
password_change_done = auth_views.PasswordChangeDoneView.as_view(
    template_name="accounts/message_page.html",
    extra_context={"title": "Password changed", "text": "Your new password is in place."},
)
password_reset = auth_views.PasswordResetView.as_view(
    template_name="accounts/form_page.html",
    email_template_name="accounts/email/password_reset.txt",
    subject_template_name="accounts/email/password_reset_subject.txt",
    success_url=reverse_lazy("accounts:password_reset_done"),
    extra_context={
        "title": "Reset your password",
        "intro": "Enter the email address of your account and we will send you a link to choose a new password.",
        "button": "Send the link",
    },
)
password_reset_done = auth_views.PasswordResetDoneView.as_view(
    template_name="accounts/message_page.html",
    extra_context={
        "title": "Check your email",
        "text": "If an account uses that address, a link to reset its password is on its way.",
    },
)
password_reset_confirm = auth_views.PasswordResetConfirmView.as_view(
    template_name="accounts/password_reset_confirm.html",
    success_url=reverse_lazy("accounts:password_reset_complete"),
)
password_reset_complete = auth_views.PasswordResetCompleteView.as_view(
    template_name="accounts/message_page.html",
    extra_context={"title": "Password reset", "text": "Your new password is in place. You can sign in now."},
)
