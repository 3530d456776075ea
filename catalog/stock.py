"""Stock levels and reservations: stock-takes, holding stock for an order, turning it into a sale, releasing and
returning it, expiring what was never paid. Private to catalog."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import IntegrityError, connections
from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from catalog.data import (
    STOCK_BULK_MAX,
    OutOfStock,
    ReservationInfo,
    ReservationNotFound,
    ReservedLine,
    StockBelowReserved,
    StockLevel,
    StockLevelsRefused,
    StockProblem,
    UnknownSku,
)
from catalog.events import StockChanged
from catalog.models import Reservation, ReservationLine, StockItem, StockReturn, Variant
from catalog.projection import refresh_products
from kernel.bus import publish
from kernel.db import atomic, db_for_module, unique, unique_by

ReservationStatus = Reservation.Status  # held, committed (sold), released: compare against these, never strings


def stock_set(*, sku: str, on_hand: int) -> StockLevel:
    """Set the counted stock of a SKU (a stock-take or a delivery booked in). Raises UnknownSku,
    StockBelowReserved, or ValueError for a negative quantity."""
    if on_hand < 0:
        raise ValueError("on-hand stock cannot be negative")
    with atomic(module="catalog"):
        variant = Variant.objects.filter(sku=sku).select_related("product").only("id", "sku", "product__slug").first()
        if variant is None:
            raise UnknownSku(sku)
        stock, _ = StockItem.objects.select_for_update().get_or_create(variant_id=variant.pk)
        if on_hand < stock.reserved:
            raise StockBelowReserved(f"{sku}: {stock.reserved} are reserved for orders in progress")
        was_available = stock.available
        if stock.on_hand != on_hand:
            stock.on_hand = on_hand
            stock.save(update_fields=["on_hand", "updated_at"])  # auto_now sets updated_at, if it is named
        if stock.available != was_available:
            publish(
                StockChanged(
                    variant_id=variant.pk,
                    sku=sku,
                    product_id=variant.product_id,
                    product_slug=variant.product.slug,
                    available=stock.available,
                    available_before=was_available,
                )
            )
            refresh_products(product_ids=[variant.product_id])  # also its updated_at
    return StockLevel(sku=sku, on_hand=stock.on_hand, reserved=stock.reserved, updated_at=stock.updated_at)


def stock_set_many(*, levels: Sequence[tuple[str, int]]) -> tuple[StockLevel, ...]:
    """Set the counted stock of up to STOCK_BULK_MAX SKUs at once: (sku, on_hand) pairs, all or none, in one
    transaction. Every item is checked first (a SKU unknown or given twice, a negative quantity, on hand below what
    is reserved); if any is wrong, StockLevelsRefused lists them all and nothing changes. The stock rows are locked
    in variant-id order, whatever the order of the request, so two imports of overlapping SKUs cannot deadlock.
    Publishes what stock_set publishes for each level that changes. Returns the levels in the request's order."""
    items = [(str(sku), int(on_hand)) for sku, on_hand in levels]
    if len(items) > STOCK_BULK_MAX:
        raise ValueError(f"at most {STOCK_BULK_MAX} stock levels at once")
    problems: list[StockProblem] = []
    first: dict[str, int] = {}
    for index, (sku, on_hand) in enumerate(items):
        if sku in first:
            problems.append(StockProblem(index, sku, "sku", f"{sku} is given twice (also item {first[sku]})."))
        else:
            first[sku] = index
        if on_hand < 0:
            problems.append(StockProblem(index, sku, "on_hand", "On-hand stock cannot be negative."))
    with atomic(module="catalog"):
        variants = {
            sku: (variant_id, product_id, slug)
            for sku, variant_id, product_id, slug in Variant.objects.filter(sku__in=list(first)).values_list(
                "sku", "pk", "product_id", "product__slug"
            )
        }
        problems += [StockProblem(index, sku, "sku", f"No variant has the SKU {sku}.")
                     for sku, index in first.items() if sku not in variants]  # fmt: skip
        ids = sorted(variant_id for variant_id, _, _ in variants.values())
        stock = _lock_stock(ids)
        for index, (sku, on_hand) in enumerate(items):
            found = variants.get(sku)
            if found is not None and first[sku] == index and 0 <= on_hand < stock[found[0]].reserved:
                reserved = stock[found[0]].reserved
                problems.append(StockProblem(index, sku, "on_hand",
                                             f"{reserved} of {sku} are reserved for orders in progress: on-hand stock "
                                             f"cannot go below that."))  # fmt: skip
        if problems:
            raise StockLevelsRefused(tuple(sorted(problems, key=lambda p: (p.index, p.field))))
        now = timezone.now()
        changed: list[StockItem] = []
        before: dict[int, int] = {}
        for sku, on_hand in items:
            row = stock[variants[sku][0]]
            if row.on_hand != on_hand:
                before[row.variant_id] = row.available
                row.on_hand, row.updated_at = on_hand, now
                changed.append(row)
        StockItem.objects.bulk_update(changed, ["on_hand", "updated_at"], batch_size=STOCK_BULK_MAX)
        by_variant = {variant_id: (sku, product_id, slug) for sku, (variant_id, product_id, slug) in variants.items()}
        for row in changed:
            sku, product_id, slug = by_variant[row.variant_id]
            publish(
                StockChanged(variant_id=row.variant_id, sku=sku, product_id=product_id, product_slug=slug,
                             available=row.available, available_before=before[row.variant_id])
            )  # fmt: skip
        refresh_products(product_ids={by_variant[row.variant_id][1] for row in changed})  # also their updated_at
    return tuple(
        StockLevel(sku=sku, on_hand=row.on_hand, reserved=row.reserved, updated_at=row.updated_at)
        for sku, row in ((sku, stock[variants[sku][0]]) for sku, _ in items)
    )


def _lock_stock(variant_ids: list[int]) -> dict[int, StockItem]:
    """The stock rows of these variants (sorted ids), locked in that order; rows missing are made first."""

    def lock(ids: list[int]) -> dict[int, StockItem]:
        rows = StockItem.objects.select_for_update().filter(variant_id__in=ids).order_by("variant_id")
        return {row.variant_id: row for row in rows}

    locked = lock(variant_ids)
    missing = [variant_id for variant_id in variant_ids if variant_id not in locked]
    if missing:  # every variant should have its row (refresh_products makes them); a new one has none in stock
        StockItem.objects.bulk_create([StockItem(variant_id=v) for v in missing], ignore_conflicts=True)
        locked.update(lock(missing))
    return locked


def _stamp(connection) -> Any:
    """Now, as a parameter of raw SQL for StockItem.updated_at on this connection (SQLite stores text)."""
    return StockItem._meta.get_field("updated_at").get_db_prep_value(timezone.now(), connection)


def _reservation_info(reservation: Reservation, lines: Iterable[ReservationLine] | None = None) -> ReservationInfo:
    """lines, if given, must come with their variant (select_related); otherwise they are read."""
    if lines is None:
        lines = reservation.lines.select_related("variant").order_by("variant_id")
    reserved = tuple(ReservedLine(line.variant_id, line.variant.sku, line.quantity) for line in lines)
    return ReservationInfo(reservation.key, reservation.status, reservation.expires_at, reserved)


def _publish_stock(changes: dict[int, int]) -> None:
    """Tell the shop about stock that changed ({variant_id: change in available}), and refresh the listings of
    products whose availability flipped."""
    rows = list(
        StockItem.objects.filter(variant_id__in=list(changes)).values_list(
            "variant_id", "variant__sku", "variant__product_id", "variant__product__slug", "on_hand", "reserved",
            "variant__product__in_stock",
        )
    )  # fmt: skip
    _announce_stock(
        (variant_id, sku, product_id, slug, on_hand - reserved, on_hand - reserved - changes[variant_id], in_stock)
        for variant_id, sku, product_id, slug, on_hand, reserved, in_stock in rows
    )


def _announce_stock(levels: Iterable[tuple[int, str, int, str, int, int, bool]]) -> None:
    """Publish StockChanged for (variant_id, sku, product_id, slug, available, available before, product in stock)
    and refresh the listing fields of products whose in-stock flag no longer holds."""
    flipped = set()
    for variant_id, sku, product_id, slug, available, before, product_in_stock in levels:
        publish(
            StockChanged(variant_id=variant_id, sku=sku, product_id=product_id, product_slug=slug, available=available,
                         available_before=before)
        )  # fmt: skip
        if (available > 0) != product_in_stock:
            flipped.add(product_id)
    # A sale or a hold does not touch the product row: every buyer of a popular product would queue on its lock.
    # An integrator sees stock counts move through /stock/?updated_since (the stock row's updated_at).
    if flipped:
        refresh_products(product_ids=flipped)  # sets their updated_at too


def _hold(variant_id: int, quantity: int) -> int | None:
    """Reserve quantity of one variant if that many are available; returns what is available afterwards, or None.

    The condition must stay on the stock row itself (no join, no subquery): PostgreSQL re-checks it on the row's
    latest version after waiting for a concurrent buyer's lock, so two buyers cannot both pass it. RETURNING saves
    reading the level back (PostgreSQL, and SQLite >= 3.35).
    """
    connection = connections[db_for_module("catalog")]
    quote = connection.ops.quote_name
    table, on_hand, reserved, variant, updated_at = (
        quote(StockItem._meta.db_table), quote("on_hand"), quote("reserved"), quote("variant_id"), quote("updated_at")
    )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {reserved} = {reserved} + %s, {updated_at} = %s "  # noqa: S608
            f"WHERE {variant} = %s AND {on_hand} >= {reserved} + %s RETURNING {on_hand} - {reserved}",
            [quantity, _stamp(connection), variant_id, quantity],
        )
        row = cursor.fetchone()
    return None if row is None else row[0]


def stock_reserve(*, key: str, lines: Iterable[tuple[int, int]], ttl_seconds: int = 900) -> ReservationInfo:
    """Hold stock for (variant_id, quantity) lines until committed, released or expired.

    Each line is a conditional update (available >= quantity) taken in variant-id order, so two buyers never
    deadlock and stock never goes below zero (the database checks it as well). All lines or none: raises
    OutOfStock for the first that cannot be held. Idempotent: the same key returns the reservation made first
    (the unique key refuses a second one, even at the same moment).
    """
    wanted: dict[int, int] = defaultdict(int)
    for variant_id, quantity in lines:
        if quantity < 1:
            raise ValueError("quantities must be at least 1")
        wanted[int(variant_id)] += int(quantity)
    if not wanted:
        raise ValueError("nothing to reserve")
    try:
        with atomic(module="catalog"):
            reservation = Reservation.objects.create(
                key=key, expires_at=timezone.now() + timedelta(seconds=ttl_seconds)
            )
            on_sale = {
                row[0]: row[1:]
                for row in Variant.objects.filter(pk__in=wanted, is_active=True, product__is_active=True).values_list(
                    "pk", "sku", "product_id", "product__slug", "product__in_stock"
                )
            }  # fmt: skip
            levels = []
            for variant_id in sorted(wanted):
                quantity = wanted[variant_id]
                available = _hold(variant_id, quantity) if variant_id in on_sale else None
                if available is None:
                    variant = Variant.objects.select_related("product", "stock").filter(pk=variant_id).first()
                    if variant is None:
                        raise OutOfStock(str(variant_id), "This product", quantity, 0)
                    stock = getattr(variant, "stock", None)
                    available = max(stock.available, 0) if stock and variant_id in on_sale else 0
                    raise OutOfStock(variant.sku, variant.product.title, quantity, available)
                sku, product_id, slug, in_stock = on_sale[variant_id]
                levels.append((variant_id, sku, product_id, slug, available, available + quantity, in_stock))
            ReservationLine.objects.bulk_create(
                [ReservationLine(reservation=reservation, variant_id=v, quantity=q) for v, q in sorted(wanted.items())]
            )
            _announce_stock(levels)
    except IntegrityError:  # this key was reserved before (or at the same moment): the first one stands
        existing = unique(Reservation.objects.filter(key=key))
        if existing is None:
            raise
        return _reservation_info(existing)
    held = tuple(ReservedLine(variant_id, sku, wanted[variant_id]) for variant_id, sku, *_ in levels)
    return ReservationInfo(reservation.key, reservation.status, reservation.expires_at, held)


def _settle(key: str, to_status: str) -> ReservationInfo:
    """Take a held reservation to to_status and move its stock; a reservation no longer held is left as it is.

    The conditional UPDATE is the lock: a concurrent settle of the same key waits for it, then finds the
    reservation no longer held and changes nothing.
    """
    connection = connections[db_for_module("catalog")]
    quote = connection.ops.quote_name
    with atomic(module="catalog", savepoint=False):
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {quote(Reservation._meta.db_table)} SET {quote('status')} = %s "  # noqa: S608
                f"WHERE {quote('key')} = %s AND {quote('status')} = %s RETURNING {quote('id')}, {quote('expires_at')}",
                [to_status, key, Reservation.Status.HELD],
            )
            settled = cursor.fetchone()
        if settled is not None:
            reservation_id, expires_at = settled
            status = str(to_status)
            lines = list(
                ReservationLine.objects.filter(reservation_id=reservation_id)
                .order_by("variant_id")
                .values_list("variant_id", "variant__sku", "quantity")
            )
            now = timezone.now()
            for variant_id, _, quantity in lines:
                change = {"reserved": F("reserved") - quantity, "updated_at": now}
                if to_status == Reservation.Status.COMMITTED:
                    change["on_hand"] = F("on_hand") - quantity
                StockItem.objects.filter(variant_id=variant_id).update(**change)
            if to_status != Reservation.Status.COMMITTED:
                _publish_stock({variant_id: quantity for variant_id, _, quantity in lines})
            # A sale leaves what is available as it was: the product (which shows availability) is not touched.
    if settled is None:  # not held (any more): report it as it stands, or raise outside the block
        reservation = unique(Reservation.objects.filter(key=key))
        if reservation is None:
            raise ReservationNotFound(key)
        return _reservation_info(reservation)
    if isinstance(expires_at, str):  # SQLite gives RETURNING columns as stored (in UTC), without Django's converters
        expires_at = parse_datetime(expires_at)
    if timezone.is_naive(expires_at):
        expires_at = timezone.make_aware(expires_at, UTC)
    return ReservationInfo(key, status, expires_at, tuple(ReservedLine(v, sku, q) for v, sku, q in lines))


def stock_commit(*, key: str) -> ReservationInfo:
    """The order is paid: held stock becomes a sale (on hand and reserved both go down). Idempotent."""
    return _settle(key, Reservation.Status.COMMITTED)


def stock_release(*, key: str) -> ReservationInfo:
    """The order will not happen: held stock is free again. Idempotent; a sold reservation is left as it is.
    An expired one is marked released too, so that a late payment can no longer take its stock again."""
    info = _settle(key, Reservation.Status.RELEASED)
    if info.status == Reservation.Status.EXPIRED:
        Reservation.objects.filter(key=key, status=Reservation.Status.EXPIRED).update(
            status=Reservation.Status.RELEASED
        )
        return dataclasses.replace(info, status=Reservation.Status.RELEASED)
    return info


def stock_sell(*, key: str) -> ReservationInfo:
    """The order is paid: sell what the reservation holds. Idempotent.

    Held: committed (stock_commit). Expired while the customer paid: its lines are taken again, each by a
    conditional UPDATE (on hand - reserved >= quantity) in variant order, all or none, and the reservation becomes
    committed in the same transaction; OutOfStock if they are gone meanwhile (nothing changes then). Released
    (the order was cancelled) or committed already: left as it is and reported.
    """
    info = stock_commit(key=key)
    if info.status != Reservation.Status.EXPIRED:
        return info
    connection = connections[db_for_module("catalog")]
    quote = connection.ops.quote_name
    table, on_hand, reserved, variant, updated_at = (
        quote(StockItem._meta.db_table), quote("on_hand"), quote("reserved"), quote("variant_id"), quote("updated_at")
    )  # fmt: skip
    with atomic(module="catalog"):
        # The conditional status change is the lock: a second seller of the same key waits, then finds it sold.
        if not Reservation.objects.filter(key=key, status=Reservation.Status.EXPIRED).update(
            status=Reservation.Status.COMMITTED
        ):
            return _reservation_info(Reservation.objects.get(key=key))
        changes = {}
        for line in sorted(info.lines, key=lambda line: line.variant_id):
            with connection.cursor() as cursor:  # the condition stays on the stock row itself, as in _hold
                cursor.execute(
                    f"UPDATE {table} SET {on_hand} = {on_hand} - %s, {updated_at} = %s "  # noqa: S608 (names only)
                    f"WHERE {variant} = %s AND {on_hand} - {reserved} >= %s",
                    [line.quantity, _stamp(connection), line.variant_id, line.quantity],
                )
                taken = cursor.rowcount == 1
            if not taken:
                variant_row = Variant.objects.select_related("product", "stock").get(pk=line.variant_id)
                raise OutOfStock(variant_row.sku, variant_row.product.title, line.quantity,
                                 max(variant_row.stock.available, 0))  # fmt: skip
            changes[line.variant_id] = -line.quantity
        _publish_stock(changes)
    return dataclasses.replace(info, status=Reservation.Status.COMMITTED)


def stock_restock(*, key: str) -> ReservationInfo:
    """The order is cancelled: held stock is released, sold stock returns to on-hand. Idempotent."""
    with atomic(module="catalog"):
        reservation = unique_by(Reservation, key=key, for_update=True)
        if reservation is None:
            raise ReservationNotFound(key)
        if reservation.status != Reservation.Status.COMMITTED:
            sold = False
        else:
            sold = True
            lines = list(reservation.lines.order_by("variant_id"))
            for line in lines:
                StockItem.objects.filter(variant_id=line.variant_id).update(
                    on_hand=F("on_hand") + line.quantity, updated_at=timezone.now()
                )
            reservation.status = Reservation.Status.RELEASED
            reservation.save(update_fields=["status"])
            _publish_stock({line.variant_id: line.quantity for line in lines})
    return _reservation_info(reservation) if sold else stock_release(key=key)


def reservations_expire(*, now: datetime | None = None, limit: int = 500) -> int:
    """Free the stock of held reservations past their time (the periodic task); they become expired. Returns how
    many. Several workers may run it at once: each reservation is settled by a conditional update."""
    now = now or timezone.now()
    keys = list(
        Reservation.objects.filter(status=Reservation.Status.HELD, expires_at__lt=now).values_list("key", flat=True)[
            :limit
        ]
    )
    for key in keys:
        _settle(key, Reservation.Status.EXPIRED)
    return len(keys)


def stock_return(*, key: str, lines: Iterable[tuple[int, int]]) -> bool:
    """Goods a customer sent back go on hand again: (variant_id, quantity) lines. Idempotent by key: True if they
    were added now, False if that key was applied before."""
    wanted: dict[int, int] = defaultdict(int)
    for variant_id, quantity in lines:
        if quantity < 1:
            raise ValueError("quantities must be at least 1")
        wanted[int(variant_id)] += int(quantity)
    try:
        with atomic(module="catalog"):
            StockReturn.objects.create(key=key)
            for variant_id in sorted(wanted):
                StockItem.objects.filter(variant_id=variant_id).update(
                    on_hand=F("on_hand") + wanted[variant_id], updated_at=timezone.now()
                )
            _publish_stock(dict(wanted))
    except IntegrityError:
        if StockReturn.objects.filter(key=key).exists():
            return False
        raise
    return True
