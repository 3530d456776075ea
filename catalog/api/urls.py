"""REST endpoints of catalog under /api/v1/ (private to the module; they call catalog's services).

GET, POST   categories/                     catalog:read, catalog:write
GET, PATCH  categories/<id>/                catalog:read, catalog:write
GET, POST   products/                       catalog:read, catalog:write (a product with its variants)
GET, PATCH  products/<id>/                  catalog:read, catalog:write (its variants by SKU too)
GET, POST   products/<id>/variants/         catalog:read, catalog:write (add a variant)
GET         variants/                       catalog:read
GET, PATCH  variants/<sku>/                 catalog:read, catalog:write
GET         stock/                          catalog:read (or inventory:write)
POST        stock/bulk/                     inventory:write (up to 500 SKUs, all or nothing)
GET, PUT    stock/<sku>/                    catalog:read (or inventory:write), inventory:write
"""

from django.urls import path

from catalog.api import views

urlpatterns = [
    path("categories/", views.CategoryList.as_view(), name="api-category-list"),
    path("categories/<id:pk>/", views.CategoryDetail.as_view(), name="api-category-detail"),
    path("products/", views.ProductList.as_view(), name="api-product-list"),
    path("products/<id:pk>/", views.ProductDetail.as_view(), name="api-product-detail"),
    path("products/<id:pk>/variants/", views.ProductVariantList.as_view(), name="api-product-variant-list"),
    path("variants/", views.VariantList.as_view(), name="api-variant-list"),
    path("variants/<code:sku>/", views.VariantDetail.as_view(), name="api-variant-detail"),
    path("stock/", views.StockList.as_view(), name="api-stock-list"),
    path("stock/bulk/", views.StockBulk.as_view(), name="api-stock-bulk"),
    path("stock/<code:sku>/", views.StockDetail.as_view(), name="api-stock-detail"),
]
