from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserChangeForm, UserCreationForm
from django.utils import timezone
from django.utils.html import format_html

from accounts.keys import API_SCOPES, api_key_create, api_key_revoke, api_key_update
from accounts.models import Address, ApiKey, User


class ShopUserCreationForm(UserCreationForm):
    class Meta:
        model = User
        fields = ("email", "full_name")


class ShopUserChangeForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


class AddressInline(admin.StackedInline):
    model = Address
    extra = 0


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    inlines = (AddressInline,)
    form = ShopUserChangeForm
    add_form = ShopUserCreationForm
    ordering = ("email",)
    list_display = ("email", "full_name", "is_staff", "is_active", "date_joined", "last_login")
    list_filter = ("is_staff", "is_superuser", "is_active", "groups")
    search_fields = ("email", "full_name")
    readonly_fields = ("date_joined", "last_login")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal info", {"fields": ("full_name",)}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "full_name", "password1", "password2")}),)


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=[(s, s) for s in API_SCOPES],
        widget=forms.CheckboxSelectMultiple,
        help_text="A write scope includes reading the same thing. inventory:write sets stock.",
    )

    class Meta:
        model = ApiKey
        fields = ("name", "scopes", "expires_at")


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are made, changed and revoked through accounts.services; the key itself is shown once, on creation."""

    form = ApiKeyForm
    list_display = ("name", "key_prefix", "scope_list", "created_at", "expires_at", "last_used_at", "state")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("name", "prefix")
    readonly_fields = ("key_prefix", "created_at", "last_used_at", "revoked_at")
    actions = ("revoke",)

    @admin.display(description="key")
    def key_prefix(self, obj: ApiKey) -> str:
        return f"shk_{obj.prefix}_…" if obj.prefix else "-"

    @admin.display(description="scopes")
    def scope_list(self, obj: ApiKey) -> str:
        return ", ".join(obj.scopes)

    @admin.display(description="state")
    def state(self, obj: ApiKey) -> str:
        if obj.revoked_at:
            return "revoked"
        if obj.expires_at and obj.expires_at <= timezone.now():
            return "expired"
        return "active"

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # revoke instead: the record of a key that was used stays

    def save_model(self, request, obj: ApiKey, form, change: bool) -> None:
        data = form.cleaned_data
        if change:
            api_key_update(key_id=obj.pk, name=data["name"], scopes=data["scopes"], expires_at=data["expires_at"])
            return
        info, token = api_key_create(
            name=data["name"], scopes=data["scopes"], expires_at=data["expires_at"], created_by_id=request.user.pk
        )
        obj.pk = info.id
        obj.refresh_from_db()
        messages.warning(
            request,
            format_html(
                "The key for {} is <code>{}</code>. Copy it now: it is not kept and cannot be shown again.",
                info.name,
                token,
            ),
        )

    @admin.action(description="Revoke the selected keys (their next request gets 401)")
    def revoke(self, request, queryset) -> None:
        for key_id in queryset.values_list("pk", flat=True):
            api_key_revoke(key_id=key_id)
        self.message_user(request, f"{queryset.count()} key(s) revoked.")
