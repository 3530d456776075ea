"""Checkout pages: details, review, place the order, come back from the gateway, pay again; and the customer's
order pages.

Thin views: they read the form and the session, call shop.services (where the checkout process is) and render or
redirect. A second click on "Place order" (same form token) gives the same order and payment.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.http import urlencode
from django.views.decorators.http import require_http_methods, require_POST

from catalog.services import variants_get
from orders import services as orders
from payments.services import PaymentInfo, PaymentNotFound, payment_get
from shop import cart, services
from shop.cart_views import VOUCHER_KEY, cart_storage, voucher_code
from shop.checkout_forms import CheckoutForm

SESSION_KEY = "checkout"
PLACED_KEY = "checkout_placed"  # the order this session's checkout placed last: its confirmation empties the cart


def _no_store(response: HttpResponse) -> HttpResponse:
    add_never_cache_headers(response)
    return response


def _user_id(request: HttpRequest) -> int | None:
    return request.user.pk if request.user.is_authenticated else None


def _refused(request: HttpRequest, error: services.CheckoutError) -> HttpResponse:
    """Back to where the customer can put it right, with the reason."""
    if isinstance(error, services.CartEmpty):
        messages.info(request, str(error))
        return redirect("shop:cart")
    messages.error(request, str(error))
    if isinstance(error, services.ReviewOutOfDate | services.PaymentNotStarted | services.VoucherNoLongerApplies):
        return redirect("shop:checkout-review")
    return redirect("shop:cart")


@require_http_methods(["GET", "HEAD", "POST"])
def details(request: HttpRequest) -> HttpResponse:
    try:
        options = services.checkout_options(
            lines=cart.lines_for_order(cart_storage(request)),
            user_id=_user_id(request),
            voucher_code=voucher_code(request),
        )
    except services.CheckoutError as error:
        return _refused(request, error)
    signed_in = request.user.is_authenticated
    default = options.default_address
    stored = request.session.get(SESSION_KEY, {})
    initial = {"email": request.user.email if signed_in else "", "full_name": options.full_name,
               "shipping_method": "standard", "saved_address": str(default.id) if default else "new",
               **stored.get("form", {})}  # fmt: skip
    form = CheckoutForm(request.POST or None, initial=initial, addresses=options.addresses, quotes=options.quotes,
                        signed_in=signed_in)  # fmt: skip
    if request.method == "POST" and form.is_valid():
        request.session[SESSION_KEY] = {
            "form": {k: v for k, v in form.cleaned_data.items() if isinstance(v, str | bool)},
            "email": form.cleaned_data["email"],
            "address": form.address(),
            "billing_address": form.billing_address(),
            "save_address": form.remember_address(),
            "shipping_method": form.cleaned_data["shipping_method"],
        }
        return redirect("shop:checkout-review")
    quote = next((q for q in options.quotes if q.shipping.code == form["shipping_method"].value()), options.quote)
    return _no_store(render(request, "shop/checkout.html", {"form": form, "quote": quote}))


@require_http_methods(["GET", "HEAD"])
def review(request: HttpRequest) -> HttpResponse:
    lines = cart.lines_for_order(cart_storage(request))
    details_ = request.session.get(SESSION_KEY)
    if lines and not details_:
        return redirect("shop:checkout")
    try:
        quote = services.checkout_quote(
            lines=lines, shipping_method=details_["shipping_method"] if details_ else "standard",
            voucher_code=voucher_code(request), user_id=_user_id(request),
            email=details_.get("email", "") if details_ else "",
        )  # fmt: skip
    except services.CheckoutError as error:
        return _refused(request, error)
    details_["token"] = secrets.token_urlsafe(16)  # one per rendering: a resubmitted form reuses it
    details_["voucher_code"] = quote.voucher.code if quote.voucher else ""  # what this review shows is placed
    request.session[SESSION_KEY] = details_
    return _no_store(render(request, "shop/checkout_review.html", {"quote": quote, "details": details_}))


def _details(stored: dict) -> services.CheckoutDetails | None:
    if not all(key in stored for key in ("email", "address", "shipping_method")):
        return None
    return services.CheckoutDetails(
        email=stored["email"], address=stored["address"], shipping_method=stored["shipping_method"],
        billing_address=stored.get("billing_address"), save_address=bool(stored.get("save_address")),
    )  # fmt: skip


@require_POST
def place(request: HttpRequest) -> HttpResponse:
    stored = request.session.get(SESSION_KEY) or {}
    try:
        started = services.checkout_place(
            token=request.POST.get("token", ""), review_token=stored.get("token"), details=_details(stored),
            lines=cart.lines_for_order(cart_storage(request)), user_id=_user_id(request),
            site_url=f"{request.scheme}://{request.get_host()}", voucher_code=stored.get("voucher_code", ""),
        )  # fmt: skip
    except services.CheckoutError as error:
        return _refused(request, error)
    request.session[PLACED_KEY] = started.order_number
    return redirect(started.next_url)


@require_http_methods(["GET", "HEAD"])
def payment_return(request: HttpRequest, number: str) -> HttpResponse:
    """Where the gateway sends the customer back: confirmation, the payment's refusal, or 'still confirming'."""
    token = request.GET.get("t")
    try:
        outcome = services.checkout_return(number=number, user_id=_user_id(request), access_token=token)
    except services.OrderNotFound:
        raise Http404("No such order") from None
    if outcome.paid and request.session.get(PLACED_KEY) == number:
        # Only the confirmation of the order this cart became empties it: opening an older order's confirmation
        # (a link in an email, the browser's history) leaves the customer's current cart alone.
        cart.clear(cart_storage(request))
        request.session.pop(SESSION_KEY, None)
        request.session.pop(PLACED_KEY, None)
        request.session.pop(VOUCHER_KEY, None)  # used by this order
    state = outcome.state
    if state == "pending" and request.GET.get("cancelled"):
        state = "left"  # back through the gateway's "Cancel and return to the shop": nothing to wait for
    context = {"order": outcome.order, "payment": outcome.payment, "state": state, "token": token or ""}
    return _no_store(render(request, "shop/checkout_return.html", context))


@require_POST
def pay_again(request: HttpRequest, number: str) -> HttpResponse:
    """The "Pay again" button of the return page and the order's pages: a new payment for the same order, on the
    gateway's page. Guests send their access token (t); anybody else's order is a 404."""
    token = request.POST.get("t") or None
    raw = request.POST.get("attempt", "")
    try:
        started = services.checkout_pay_again(
            number=number, attempt=int(raw) if raw.isdigit() and len(raw) < 5 else 0, user_id=_user_id(request),
            access_token=token, site_url=f"{request.scheme}://{request.get_host()}",
        )  # fmt: skip
    except services.OrderNotFound:
        raise Http404("No such order") from None
    except services.CheckoutError as error:
        messages.error(request, str(error))
        target = reverse("shop:checkout-return", args=[number])
        return redirect(f"{target}?{urlencode({'t': token})}" if token else target)
    return redirect(started.next_url)


@dataclass(frozen=True)
class OrderItem:
    """An order line as the customer's pages show it: with its product's picture and a link to its page, read from
    catalog now (empty when the product is no longer on sale: the line's own snapshot still shows)."""

    line: orders.OrderLineInfo
    product_url: str = ""
    image_url: str = ""
    pictured = True  # shop/_order_summary.html shows a picture (or its placeholder) for these lines

    def __getattr__(self, name: str):  # the line's fields: name, quantity, line_total, ...
        return getattr(self.line, name)


def _items(lines: list[orders.OrderLineInfo]) -> list[OrderItem]:
    """The lines with their products, in one catalog query whatever their number."""
    found = variants_get(variant_ids={line.variant_id for line in lines})
    items = []
    for line in lines:
        variant = found.get(line.variant_id)
        if variant is None:
            items.append(OrderItem(line))
            continue
        url = reverse("shop:product", args=[variant.product_slug]) + f"?{urlencode({'variant': variant.id})}"
        items.append(OrderItem(line, url, variant.image_url))
    return items


HISTORY_THUMBNAILS = 3  # items pictured per order in the history; the rest are counted


@login_required
def order_history(request: HttpRequest) -> HttpResponse:
    placed = orders.orders_for_customer(user_id=request.user.pk, parcels=False)
    items = iter(_items([line for order in placed for line in order.lines[:HISTORY_THUMBNAILS]]))
    rows = [
        (order, [next(items) for _ in order.lines[:HISTORY_THUMBNAILS]], max(len(order.lines) - HISTORY_THUMBNAILS, 0))
        for order in placed
    ]
    return _no_store(render(request, "shop/orders.html", {"orders": rows}))


def _token(request: HttpRequest) -> str:
    return request.GET.get("t") or request.POST.get("t") or ""


def _order_for(request: HttpRequest, number: str) -> orders.OrderInfo:
    user_id = request.user.pk if request.user.is_authenticated else None
    try:
        return orders.order_get(number=number, user_id=user_id, access_token=_token(request) or None)
    except orders.OrderNotFound:
        raise Http404("No such order") from None


def _order_url(request: HttpRequest, number: str) -> str:
    """The order's page, with the guest's token if they came with one."""
    target = reverse("shop:order", args=[number])
    token = _token(request)
    return f"{target}?{urlencode({'t': token})}" if token and not request.user.is_authenticated else target


def _payment(order: orders.OrderInfo) -> PaymentInfo | None:
    try:
        return payment_get(payment_id=order.payment_id) if order.payment_id else None
    except PaymentNotFound:
        return None


@require_http_methods(["GET", "HEAD"])
def order_detail(request: HttpRequest, number: str) -> HttpResponse:
    if not request.user.is_authenticated and not _token(request):
        return redirect_to_login(request.get_full_path())  # a customer's link from an email: sign in first
    order = _order_for(request, number)
    returnable = [(line, range(line.returnable + 1)) for line in order.lines if line.returnable]
    context = {"order": order, "items": _items(list(order.lines)), "payment": _payment(order),
               "token": request.GET.get("t", ""), "returnable": returnable, "reasons": orders.REASONS}  # fmt: skip
    return _no_store(render(request, "shop/order_detail.html", context))


@require_http_methods(["GET", "HEAD", "POST"])
def order_cancel(request: HttpRequest, number: str) -> HttpResponse:
    """Cancelling asks first: the order's Cancel button leads to this page ("Cancel order X?", what happens to the
    money), and only its "Yes, cancel" (a POST with confirm) cancels."""
    order = _order_for(request, number)
    if not order.can_cancel:
        messages.error(request, "This order has left our warehouse and can no longer be cancelled.")
        return redirect(_order_url(request, number))
    if request.method != "POST" or request.POST.get("confirm") != "yes":
        context = {"order": order, "payment": _payment(order), "token": _token(request),
                   "keep_url": _order_url(request, number)}  # fmt: skip
        return _no_store(render(request, "shop/order_cancel.html", context))
    actor = f"customer:{request.user.pk}" if request.user.is_authenticated else "guest"
    try:
        orders.order_cancel(number=order.number, actor=actor,
                            user_id=request.user.pk if request.user.is_authenticated else None,
                            access_token=None if request.user.is_authenticated else _token(request))  # fmt: skip
    except orders.IllegalTransition as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Your order is cancelled. Nothing will be charged, or it is refunded.")
    return redirect(_order_url(request, number))


@require_POST
def order_return(request: HttpRequest, number: str) -> HttpResponse:
    """The customer asks to return delivered items: quantities per line, a reason and a note."""
    order = _order_for(request, number)
    signed_in = request.user.is_authenticated
    lines = []
    for line in order.lines:
        raw = request.POST.get(f"return_{line.id}", "0")
        quantity = int(raw) if raw.isdigit() and len(raw) < 4 else 0
        if quantity:
            lines.append((line.id, quantity))
    try:
        ret = orders.return_request(
            number=order.number, lines=lines, reason=request.POST.get("reason", ""),
            note=request.POST.get("note", "")[:500], actor=f"customer:{request.user.pk}" if signed_in else "guest",
            user_id=request.user.pk if signed_in else None, access_token=None if signed_in else request.POST.get("t"),
        )  # fmt: skip
    except orders.ReturnError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Return {ret.number} is registered. Send the items back; we refund them once "
                                  "they arrive.")  # fmt: skip
    return redirect(_order_url(request, number))
