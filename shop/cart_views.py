"""Cart pages and actions. Work without JavaScript (redirect and message) and with it (JSON, no reload)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from shop import cart, services


def cart_storage(request: HttpRequest) -> cart.CartStorage:
    """The request's cart: the account's for a signed-in customer, else the session's."""
    if request.user.is_authenticated:
        return cart.DatabaseCartStorage(request.user.pk)
    return cart.SessionCartStorage(request.session)


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _back(request: HttpRequest) -> HttpResponse:
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure()):
        target = reverse("shop:cart")
    return redirect(target)


def _fail(request: HttpRequest, error: cart.CartError) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"error": {"code": "cart", "message": str(error)}}, status=400)
    messages.error(request, str(error))
    return _back(request)


def _done(request: HttpRequest, change: cart.Change) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse(
            {
                "ok": True,
                "message": change.message,
                "quantity": change.quantity,
                "count": cart.count(cart_storage(request)),
            }
        )
    (messages.warning if change.capped else messages.success)(request, change.message)
    return _back(request)


@require_POST
def cart_add(request: HttpRequest) -> HttpResponse:
    try:
        variant_id = cart.parse_variant(request.POST.get("variant", ""))
        quantity = cart.parse_quantity(request.POST.get("quantity", "1"))
        change = cart.add(cart_storage(request), variant_id=variant_id, quantity=quantity)
    except cart.CartError as error:
        return _fail(request, error)
    return _done(request, change)


@require_POST
def cart_update(request: HttpRequest) -> HttpResponse:
    try:
        variant_id = cart.parse_variant(request.POST.get("variant", ""))
        quantity = cart.parse_quantity(request.POST.get("quantity", ""), allow_zero=True)
        change = cart.set_quantity(cart_storage(request), variant_id=variant_id, quantity=quantity)
    except cart.CartError as error:
        return _fail(request, error)
    return _done(request, change)


@require_POST
def cart_remove(request: HttpRequest) -> HttpResponse:
    try:
        change = cart.remove(cart_storage(request), variant_id=cart.parse_variant(request.POST.get("variant", "")))
    except cart.CartError as error:
        return _fail(request, error)
    return _done(request, change)


@require_safe
def cart_page(request: HttpRequest) -> HttpResponse:
    view = cart.view(cart_storage(request))
    context = {"cart": view, "totals": services.cart_totals(subtotal=view.subtotal) if view.lines else None,
               "max_quantity": 99}  # fmt: skip
    response = render(request, "shop/cart.html", context)
    add_never_cache_headers(response)
    return response
