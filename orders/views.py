"""Carriers' delivery updates (signed webhooks). Thin: verification is in orders.carriers, the change in services."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from orders import carriers, services


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


@csrf_exempt  # carriers sign their updates instead
@require_POST
def carrier_update(request: HttpRequest, carrier: str) -> JsonResponse:
    length = request.META.get("CONTENT_LENGTH") or "0"
    if not (length.isascii() and length.isdigit()) or int(length) > carriers.MAX_BODY_BYTES:
        return _error(413, "too_large", "Updates are limited to 16 KB.")
    body = request.read(carriers.MAX_BODY_BYTES + 1)
    if len(body) > carriers.MAX_BODY_BYTES:
        return _error(413, "too_large", "Updates are limited to 16 KB.")
    try:
        update = carriers.verify(carrier, body, request.headers.get("Carrier-Signature", ""))
        outcome = services.carrier_update(carrier=carrier, event_id=update.event_id,
                                          tracking_number=update.tracking_number, status=update.status)  # fmt: skip
    except carriers.CarrierUpdateRejected as exc:
        return _error(exc.status, exc.code, exc.message)
    except services.ShipmentError:
        return _error(404, "unknown_parcel", "No parcel with that tracking number from this carrier.")
    return JsonResponse({"status": outcome})
