"""Checkout: details, review, place the order (reserve stock, create the order, start the payment), come back.

The process is shop's; the rules are the services': catalog holds the stock, orders prices and keeps the order,
payments talks to the gateway. A second click on "Place order" (same form token) gives the same order and payment.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods, require_POST

from accounts.services import address_list
from catalog.services import OutOfStock
from orders import services as orders
from payments.services import GatewayUnavailable, PaymentError, payment_authorize, payment_get, payment_refresh
from shop import cart
from shop.cart_views import cart_storage
from shop.checkout_forms import CheckoutForm

SESSION_KEY = "checkout"


def _no_store(response: HttpResponse) -> HttpResponse:
    add_never_cache_headers(response)
    return response


def _cart_lines_or_redirect(request: HttpRequest):
    lines = cart.lines_for_order(cart_storage(request))
    if not lines:
        messages.info(request, "Your cart is empty.")
        return None
    return lines


@require_http_methods(["GET", "HEAD", "POST"])
def details(request: HttpRequest) -> HttpResponse:
    lines = _cart_lines_or_redirect(request)
    if lines is None:
        return redirect("shop:cart")
    try:
        quote = orders.order_quote(lines=lines)
    except orders.UnavailableItem as exc:
        messages.error(request, str(exc))
        return redirect("shop:cart")
    addresses = address_list(user_id=request.user.pk) if request.user.is_authenticated else ()
    stored = request.session.get(SESSION_KEY, {})
    initial = {"email": request.user.email if request.user.is_authenticated else "", "shipping_method": "standard",
               "saved_address": str(addresses[0].id) if addresses else "new", **stored.get("form", {})}  # fmt: skip
    form = CheckoutForm(
        request.POST or None,
        initial=initial,
        addresses=addresses,
        methods=orders.shipping_methods(subtotal=quote.subtotal),
    )
    if request.method == "POST" and form.is_valid():
        request.session[SESSION_KEY] = {
            "form": {k: v for k, v in form.cleaned_data.items() if isinstance(v, str)},
            "email": form.cleaned_data["email"],
            "address": form.address(),
            "shipping_method": form.cleaned_data["shipping_method"],
        }
        return redirect("shop:checkout-review")
    return _no_store(render(request, "shop/checkout.html", {"form": form, "quote": quote}))


@require_http_methods(["GET", "HEAD"])
def review(request: HttpRequest) -> HttpResponse:
    lines = _cart_lines_or_redirect(request)
    details_ = request.session.get(SESSION_KEY)
    if lines is None:
        return redirect("shop:cart")
    if not details_:
        return redirect("shop:checkout")
    try:
        quote = orders.order_quote(lines=lines, shipping_method=details_["shipping_method"])
    except orders.UnavailableItem as exc:
        messages.error(request, str(exc))
        return redirect("shop:cart")
    details_["token"] = secrets.token_urlsafe(16)  # one per rendering: a resubmitted form reuses it
    request.session[SESSION_KEY] = details_
    return _no_store(render(request, "shop/checkout_review.html", {"quote": quote, "details": details_}))


@require_POST
def place(request: HttpRequest) -> HttpResponse:
    details_ = request.session.get(SESSION_KEY) or {}
    token = request.POST.get("token", "")
    if not token or len(token) > 64:
        messages.error(request, "Please review your order again before placing it.")
        return redirect("shop:checkout-review")
    key = f"checkout:{token}"
    # The token of the review page shown last: order_place is idempotent by it, so pressing twice, or the browser
    # sending the form again, finds the order placed the first time.
    current = token == details_.get("token")
    order = None if current else orders.order_by_key(idempotency_key=key)
    if order is None:
        if not current:
            messages.error(request, "This page was out of date. Please check your order and place it again.")
            return redirect("shop:checkout-review")
        lines = cart.lines_for_order(cart_storage(request))
        try:
            order = orders.order_place(
                idempotency_key=key, lines=lines, shipping_method=details_["shipping_method"],
                shipping_address=details_["address"], email=details_["email"],
                user_id=request.user.pk if request.user.is_authenticated else None,
            )  # fmt: skip
        except OutOfStock as exc:
            messages.error(request, f"{exc} Your cart is unchanged; please adjust it.")
            return redirect("shop:cart")
        except (orders.EmptyBasket, orders.UnavailableItem) as exc:
            messages.error(request, str(exc))
            return redirect("shop:cart")
    return_url = request.build_absolute_uri(
        reverse("shop:checkout-return", args=[order.number]) + f"?t={order.access_token}"
    )
    try:
        payment = payment_authorize(
            reference=order.number, amount=order.total, currency=order.currency, idempotency_key=key,
            return_url=return_url,
            notify_url=request.build_absolute_uri(reverse("payments:notify", args=[settings.PAYMENTS_GATEWAY])),
        )  # fmt: skip
    except (PaymentError, GatewayUnavailable) as exc:
        messages.error(request, f"We could not start the payment ({exc}). Nothing was charged; please try again.")
        return redirect("shop:checkout-review")
    orders.order_attach_payment(number=order.number, payment_id=payment.id)
    if payment.status == "failed" or not payment.redirect_url:
        return redirect(return_url)
    return redirect(payment.redirect_url)


@require_http_methods(["GET", "HEAD"])
def payment_return(request: HttpRequest, number: str) -> HttpResponse:
    """Where the gateway sends the customer back: confirmation, the payment's refusal, or 'still confirming'."""
    user_id = request.user.pk if request.user.is_authenticated else None
    token = request.GET.get("t")
    try:
        order = orders.order_get(number=number, user_id=user_id, access_token=token, history=False)
    except orders.OrderNotFound:
        raise Http404("No such order") from None
    payment = None
    if order.payment_id and order.status in ("pending_payment", "cancelled"):
        payment = payment_refresh(payment_id=order.payment_id)  # asks the gateway while the payment is pending
        if order.status == "pending_payment" and payment.status != "pending":  # the outcome moved the order on
            order = orders.order_current(order)
    if order.status not in ("pending_payment", "cancelled"):
        cart.clear(cart_storage(request))
        request.session.pop(SESSION_KEY, None)
        state = "paid"
    elif order.status == "cancelled" and payment is not None and payment.status == "failed":
        state = "failed"
    elif order.status == "cancelled":
        state = "cancelled"
    else:
        state = "pending"
    context = {"order": order, "payment": payment, "state": state, "token": token or ""}
    return _no_store(render(request, "shop/checkout_return.html", context))


@login_required
def order_history(request: HttpRequest) -> HttpResponse:
    return _no_store(
        render(request, "shop/orders.html", {"orders": orders.orders_for_customer(user_id=request.user.pk)})
    )


def _order_for(request: HttpRequest, number: str) -> orders.OrderInfo:
    user_id = request.user.pk if request.user.is_authenticated else None
    token = request.GET.get("t") or request.POST.get("t")
    try:
        return orders.order_get(number=number, user_id=user_id, access_token=token)
    except orders.OrderNotFound:
        raise Http404("No such order") from None


@require_http_methods(["GET", "HEAD"])
def order_detail(request: HttpRequest, number: str) -> HttpResponse:
    order = _order_for(request, number)
    payment = payment_get(payment_id=order.payment_id) if order.payment_id else None
    context = {"order": order, "payment": payment, "token": request.GET.get("t", "")}
    return _no_store(render(request, "shop/order_detail.html", context))


@require_POST
def order_cancel(request: HttpRequest, number: str) -> HttpResponse:
    order = _order_for(request, number)
    actor = f"customer:{request.user.pk}" if request.user.is_authenticated else "guest"
    try:
        orders.order_cancel(number=order.number, actor=actor,
                            user_id=request.user.pk if request.user.is_authenticated else None,
                            access_token=None if request.user.is_authenticated else request.POST.get("t"))  # fmt: skip
    except orders.IllegalTransition as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Your order is cancelled. Nothing will be charged, or it is refunded.")
    target = reverse("shop:order", args=[number])
    token = request.POST.get("t")
    return redirect(f"{target}?t={token}" if token and not request.user.is_authenticated else target)
