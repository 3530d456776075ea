"""Money is rounded in one place, kernel.money: half-up, to the currency's minor unit. Payments and the demo
catalog go through it. Each case below gives a different answer under banker's rounding (half-even), under
truncation, or when every currency is treated as having cents."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kernel.money import Money, minor_units, round_money
from payments import services as payments


def exact(value: Decimal) -> tuple:
    """Digits and exponent, not only the value: Decimal("1500") == Decimal("1500.00") but they print differently."""
    return tuple(value.as_tuple())


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("2.005", "EUR", "2.01"),  # half-even would give 2.00
        ("0.125", "EUR", "0.13"),  # half-even would give 0.12
        ("2.004", "EUR", "2.00"),
        ("-2.005", "EUR", "-2.01"),  # half away from zero, as a refund mirrors a charge
        ("10", "EUR", "10.00"),
        ("1500.5", "JPY", "1501"),  # no minor unit; half-even would give 1500
        ("1500.4", "jpy", "1500"),  # the code's case does not matter
        ("99.99", "JPY", "100"),
        ("1.2345", "BHD", "1.235"),  # three decimals; half-even would give 1.234
        ("7", "KRW", "7"),
    ],
)
def test_round_money_is_half_up_to_the_currencys_minor_unit(amount, currency, expected):
    assert exact(round_money(Decimal(amount), currency)) == exact(Decimal(expected))
    assert exact(Money(amount, currency).rounded().amount) == exact(Decimal(expected))


def test_minor_units_know_currencies_without_and_with_finer_units():
    assert (minor_units("EUR"), minor_units("jpy"), minor_units("KWD")) == (2, 0, 3)


def test_round_money_validates_what_it_rounds():
    with pytest.raises(TypeError):
        round_money(0.1, "EUR")  # type: ignore[arg-type]
    for bad_amount, bad_currency, reason in [
        ("abc", "EUR", "not an amount"),
        (None, "EUR", "not an amount"),
        ("NaN", "EUR", "finite"),
        ("1", "EURO", "ISO 4217"),
        ("1", "E1R", "ISO 4217"),
    ]:
        with pytest.raises(ValueError, match=reason):
            round_money(bad_amount, bad_currency)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="too large"):
        round_money(Decimal("1e40"), "EUR")


# ---------------------------------------------------------------- payments


def _authorize(amount, currency: str, key: str) -> payments.PaymentInfo:
    return payments.payment_authorize(
        reference=f"ORD-{key}", amount=amount, currency=currency, idempotency_key=key,
        return_url="http://testserver/checkout/return/", notify_url="http://testserver/payments/notify/test/",
    )  # fmt: skip


@pytest.mark.django_db
def test_payments_round_half_up_and_respect_the_currency():
    assert _authorize(Decimal("10.005"), "EUR", "eur-half").amount == Decimal("10.01")
    yen = _authorize(Decimal("1500.5"), "jpy", "jpy-half")
    assert (yen.amount, yen.currency) == (Decimal("1501"), "JPY")
    with pytest.raises(payments.InvalidAmount):
        _authorize(Decimal("0.004"), "EUR", "rounds-to-zero")
    with pytest.raises(payments.InvalidAmount):
        _authorize(0.5, "EUR", "float")
    with pytest.raises(payments.InvalidAmount, match="not supported"):
        _authorize(Decimal("1.234"), "BHD", "three-decimals")  # the columns hold two decimal places


@pytest.mark.django_db
def test_a_partial_capture_is_rounded_in_the_payments_currency(monkeypatch):
    from payments.models import Payment, Transaction

    payment = _authorize(Decimal("1500"), "JPY", "jpy-capture")
    Payment.objects.filter(pk=payment.id).update(status=Payment.Status.AUTHORIZED, amount_authorized=Decimal(1500))
    monkeypatch.setattr(
        "payments.services.get_gateway",
        lambda *a, **kw: pytest.fail("the amount is checked before the gateway is called"),
    )
    with pytest.raises(payments.InvalidAmount):
        payments.payment_capture(payment_id=payment.id, amount=Decimal("0.4"), idempotency_key="cap-0")
    assert not Transaction.objects.filter(idempotency_key="cap-0").exists()


# ---------------------------------------------------------------- the demo catalog


@pytest.mark.django_db
@pytest.mark.parametrize("currency", ["EUR", "JPY"])
def test_demo_prices_are_rounded_by_kernel_money(settings, currency):
    from catalog.models import Variant
    from catalog.services import demo_catalog_seed

    settings.SHOP_CURRENCY = currency
    demo_catalog_seed(products=40, seed=3)
    on_sale = list(Variant.objects.exclude(compare_at_price=None).values_list("price", "compare_at_price"))
    assert on_sale, "the demo catalog has products on sale"
    for price, compare_at in on_sale:
        assert compare_at == round_money(price * Decimal("1.25"), currency)
    if currency == "JPY":
        assert all(p == p.to_integral_value() for p in Variant.objects.values_list("price", flat=True))
    else:  # a price ending in .50 times 1.25 ends in 5 thousandths: half-up rounds it up
        halves = [(p, c) for p, c in on_sale if p * Decimal("1.25") % Decimal("0.01") == Decimal("0.005")]
        assert halves, "the seed has a case where half-up and half-even differ"
        assert all(c == p * Decimal("1.25") + Decimal("0.005") for p, c in halves)
