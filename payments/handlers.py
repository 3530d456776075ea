"""What payments does when another module asks (commands sent through the asker's outbox).

Each runs on a worker, since it talks to the gateway, outside any database lock. Every operation is idempotent by
its key, so a command delivered twice charges, voids or refunds once. A gateway timeout leaves the operation
pending and payments.resolve_pending finishes it; an operation the payment's state no longer allows (voiding a
payment already voided) is logged and ends there.
"""

from __future__ import annotations

import logging

from kernel.bus import subscribe
from payments import services
from payments.events import CancelPayment, CapturePayment, RefundPayment

logger = logging.getLogger(__name__)


@subscribe(CapturePayment, idempotent=True, queue="payments")
def capture_payment(command: CapturePayment) -> None:
    try:
        services.payment_capture(
            payment_id=command.payment_id, idempotency_key=command.idempotency_key, amount=command.amount
        )
    except services.OperationNotAllowed as exc:
        logger.warning("capture %s of payment %s refused: %s", command.idempotency_key, command.payment_id, exc)


@subscribe(CancelPayment, idempotent=True, queue="payments")
def cancel_payment(command: CancelPayment) -> None:
    try:
        services.payment_cancel(payment_id=command.payment_id, idempotency_key=command.idempotency_key)
    except services.OperationNotAllowed as exc:
        logger.warning("cancelling payment %s refused: %s", command.payment_id, exc)


@subscribe(RefundPayment, idempotent=True, queue="payments")
def refund_payment(command: RefundPayment) -> None:
    try:
        services.payment_refund(
            payment_id=command.payment_id, idempotency_key=command.idempotency_key, amount=command.amount
        )
    except services.OperationNotAllowed as exc:
        logger.warning("refund %s of payment %s refused: %s", command.idempotency_key, command.payment_id, exc)
