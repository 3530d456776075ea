"""Root URLs. Modules are included by dotted string, so config imports no module's private parts."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.static import serve
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from config import health

admin.site.site_header = f"{settings.SHOP_NAME} administration"
admin.site.site_title = f"{settings.SHOP_NAME} admin"

api_v1 = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    # Each module serves its own endpoints from its private api package, included here by dotted string.
    path("", include("catalog.api.urls")),
    path("", include("orders.api.urls")),
    path("", include("accounts.api.urls")),
    path("", include("webhooks.api.urls")),
]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("account/", include("accounts.urls")),
    path("payments/", include("payments.urls")),
    path("orders/", include("orders.urls")),
    re_path(r"^api/(?P<version>v1)/", include(api_v1)),
    path("", include("shop.urls")),
]

if settings.SERVE_MEDIA and settings.MEDIA_URL.startswith("/"):
    media_prefix = settings.MEDIA_URL.strip("/")
    urlpatterns.insert(0, re_path(rf"^{media_prefix}/(?P<path>.*)$", serve, {"document_root": settings.MEDIA_ROOT}))

handler400 = "config.views.bad_request"
handler403 = "config.views.permission_denied"
handler404 = "config.views.page_not_found"
handler500 = "config.views.server_error"
