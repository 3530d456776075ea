from __future__ import annotations

import urllib.request

from kernel.celery import idempotent_task, periodic_task
from payments import services
from payments.gateways.test_gateway import TestGateway
from payments.models import TestGatewayCharge


@periodic_task(name="payments.resolve_pending", module="payments")
def resolve_pending() -> int:
    return services.payments_resolve_pending()


@idempotent_task(name="payments.test_gateway_notify", max_retries=5)
def test_gateway_notify(charge_id: int) -> int:
    """The test gateway calling the shop back, over HTTP like a real one (retried with backoff on failure)."""
    charge = TestGatewayCharge.objects.get(pk=charge_id)
    body, headers = TestGateway().notification(charge)
    request = urllib.request.Request(charge.notify_url, data=body, headers=headers, method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (the shop's own notify address)
        return response.status
