"""Gateway notifications (webhooks) and the test gateway's hosted card page."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from kernel.db import unique_by
from payments import services
from payments.gateways.test_gateway import CARDS, TestGateway
from payments.models import TestGatewayCharge
from payments.tasks import test_gateway_notify

MAX_NOTIFICATION_BYTES = 64 * 1024


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


@csrf_exempt  # gateways sign their notifications instead
@require_POST
def notify(request: HttpRequest, gateway: str) -> JsonResponse:
    if gateway not in ("test", "stripe"):
        return _error(404, "unknown_gateway", "No such payment gateway.")
    length = request.META.get("CONTENT_LENGTH") or "0"
    if not length.isdigit() or int(length) > MAX_NOTIFICATION_BYTES:
        return _error(413, "too_large", "Notifications are limited to 64 KB.")
    body = request.read(MAX_NOTIFICATION_BYTES + 1)
    if len(body) > MAX_NOTIFICATION_BYTES:
        return _error(413, "too_large", "Notifications are limited to 64 KB.")
    try:
        outcome = services.notification_receive(gateway=gateway, body=body, headers=dict(request.headers))
    except services.GatewayUnavailable:
        return _error(404, "unknown_gateway", "That payment gateway is not in use here.")
    except services.InvalidNotification as exc:
        return _error(400, "invalid_notification", str(exc))
    except services.UnknownPayment:
        return _error(404, "unknown_payment", "No payment with that reference.")
    return JsonResponse({"status": outcome})


@require_http_methods(["GET", "HEAD", "POST"])
def test_gateway_pay(request: HttpRequest, token: str) -> HttpResponse:
    """The test gateway's hosted payment page: the only place a (test) card number is ever typed."""
    if not settings.PAYMENTS_TEST_GATEWAY_ENABLED:
        raise Http404("The test gateway is switched off")
    charge = unique_by(TestGatewayCharge, token=token)
    if charge is None:
        raise Http404("No such payment")
    error = ""
    if request.method == "POST" and charge.status == "created":
        card = "".join(ch for ch in request.POST.get("card_number", "") if ch.isdigit())
        if len(card) < 12 or len(card) > 19:
            error = "Enter the card number (12 to 19 digits)."
        else:
            outcome = TestGateway().pay(charge, card)
            if outcome not in (None, "timeout"):  # None: another press paid it; a timed-out gateway sends nothing
                test_gateway_notify.delay(charge.pk)
            return redirect(charge.return_url)
    elif request.method == "POST":
        return redirect(charge.return_url)  # already paid: the browser sent the form twice
    cards = [(f"{n[:4]} {n[4:8]} {n[8:12]} {n[12:]}", outcome, code) for n, (outcome, code) in CARDS.items()]
    context = {"charge": charge, "error": error, "cards": cards, "cancel_url": _cancel_url(charge.return_url)}
    return render(request, "payments/test_gateway.html", context)


def _cancel_url(return_url: str) -> str:
    """Where "Cancel and return to the shop" leads, as on a real hosted page: the shop's return page for the
    payment, told that the customer left without paying (the charge stays unpaid, and could still be paid)."""
    parts = urlsplit(return_url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    return urlunsplit(parts._replace(query=urlencode([*query, ("cancelled", "1")])))
