from django.contrib.sitemaps import views as sitemap_views
from django.urls import path
from django.views.decorators.cache import cache_page

from shop import cart_views, checkout_views, views
from shop.sitemaps import SITEMAPS

app_name = "shop"

urlpatterns = [
    path("", views.home, name="home"),
    path("c/<slug:slug>/", views.category, name="category"),
    path("p/<slug:slug>/", views.product, name="product"),
    path("search/", views.search, name="search"),
    path("search/suggest", views.suggest, name="suggest"),
    path("cart/", cart_views.cart_page, name="cart"),
    path("cart/add", cart_views.cart_add, name="cart-add"),
    path("cart/update", cart_views.cart_update, name="cart-update"),
    path("cart/remove", cart_views.cart_remove, name="cart-remove"),
    path("cart/voucher", cart_views.voucher_apply, name="cart-voucher"),
    path("cart/voucher/remove", cart_views.voucher_remove, name="cart-voucher-remove"),
    path("checkout/", checkout_views.details, name="checkout"),
    path("checkout/review/", checkout_views.review, name="checkout-review"),
    path("checkout/place/", checkout_views.place, name="checkout-place"),
    path("checkout/return/<str:number>/", checkout_views.payment_return, name="checkout-return"),
    path("checkout/pay-again/<str:number>/", checkout_views.pay_again, name="checkout-pay-again"),
    path("orders/", checkout_views.order_history, name="orders"),
    path("orders/<str:number>/", checkout_views.order_detail, name="order"),
    path("orders/<str:number>/cancel/", checkout_views.order_cancel, name="order-cancel"),
    path("orders/<str:number>/return/", checkout_views.order_return, name="order-return"),
    path("pages/<slug:slug>/", views.info_page, name="info-page"),
    path("robots.txt", views.robots_txt, name="robots"),
    path(
        "sitemap.xml",
        cache_page(3600)(sitemap_views.index),
        {"sitemaps": SITEMAPS, "sitemap_url_name": "shop:sitemap-section"},
        name="sitemap",
    ),
    path(
        "sitemap-<section>.xml",
        cache_page(3600)(sitemap_views.sitemap),
        {"sitemaps": SITEMAPS},
        name="sitemap-section",
    ),
]
