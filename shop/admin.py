from django.contrib import admin
from django.http import HttpRequest

from shop.info_pages import REQUIRED_SLUGS
from shop.models import InfoPage


@admin.register(InfoPage)
class InfoPageAdmin(admin.ModelAdmin):
    list_display = ("title", "slug", "is_published", "updated_at")
    list_filter = ("is_published",)
    search_fields = ("title", "slug", "content")
    prepopulated_fields = {"slug": ("title",)}
    fields = ("title", "slug", "summary", "content", "is_published")

    def get_readonly_fields(self, request: HttpRequest, obj: InfoPage | None = None) -> tuple[str, ...]:
        # the footer links to the required pages by address
        return ("slug",) if obj is not None and obj.slug in REQUIRED_SLUGS else ()

    def get_prepopulated_fields(self, request: HttpRequest, obj: InfoPage | None = None) -> dict:
        return {} if obj is not None and obj.slug in REQUIRED_SLUGS else self.prepopulated_fields

    def has_delete_permission(self, request: HttpRequest, obj: InfoPage | None = None) -> bool:
        # the footer links to them: unpublish one instead
        if obj is not None and obj.slug in REQUIRED_SLUGS:
            return False
        return super().has_delete_permission(request, obj)
