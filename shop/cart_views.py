"""Cart pages and actions. Work without JavaScript (redirect and message) and with it (JSON, no reload)."""

from __future__ import annotations

from decimal import Decimal

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from shop import cart, recs, services

VOUCHER_KEY = "voucher_code"  # the code applied in the cart, in the session for visitors and customers alike
VOUCHER_FLASH_KEY = "voucher_refused"  # the code just refused, and why, for the next cart page


def voucher_code(request: HttpRequest) -> str:
    return request.session.get(VOUCHER_KEY, "")


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
                "level": "warning" if change.capped else "success",
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


@require_POST
def voucher_apply(request: HttpRequest) -> HttpResponse:
    """The cart's "Voucher code" form: the code is checked against the cart and kept in the session."""
    storage = cart_storage(request)
    user_id = request.user.pk if request.user.is_authenticated else None
    try:
        code = services.checkout_voucher_apply(
            lines=cart.lines_for_order(storage), code=request.POST.get("code", "")[:100], user_id=user_id
        )
    except services.CheckoutError as error:
        # shown once, under the field (the page after the redirect), with what was typed
        request.session[VOUCHER_FLASH_KEY] = {"typed": request.POST.get("code", "")[:40], "error": str(error)}
        return redirect("shop:cart")
    request.session[VOUCHER_KEY] = code
    messages.success(request, f"Voucher {code} applied.")
    return redirect("shop:cart")


@require_POST
def voucher_remove(request: HttpRequest) -> HttpResponse:
    code = request.session.pop(VOUCHER_KEY, "")
    if code:
        messages.success(request, f"Voucher {code} removed.")
    return redirect("shop:cart")


@require_safe
def cart_page(request: HttpRequest) -> HttpResponse:
    storage = cart_storage(request)
    view = cart.view(storage)
    discounts = None
    if view.lines and not view.has_problems:
        user_id = request.user.pk if request.user.is_authenticated else None
        discounts = services.cart_discounts(
            lines=[(line.variant.product_id, line.total) for line in view.lines], voucher_code=voucher_code(request),
            user_id=user_id,
        )  # fmt: skip
    totals = None
    if view.lines:
        totals = services.cart_totals(
            subtotal=view.subtotal, discount=discounts.discount if discounts else Decimal(0),
            shipping_discount=discounts.shipping_discount if discounts else Decimal(0),
        )  # fmt: skip
    context = {"cart": view, "max_quantity": 99, "discounts": discounts, "voucher_code": voucher_code(request),
               "totals": totals,
               "voucher_flash": request.session.pop(VOUCHER_FLASH_KEY, None),
               "together": recs.bought_together(cart_product_ids=tuple(dict.fromkeys(
                   line.variant.product_id for line in view.lines if line.variant is not None)))}  # fmt: skip
    response = render(request, "shop/cart.html", context)
    add_never_cache_headers(response)
    return response
