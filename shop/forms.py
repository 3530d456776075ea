"""Query-string forms of the storefront. A bad value never fails the page: it is ignored and explained."""

from __future__ import annotations

import re
from decimal import Decimal

from django import forms
from django.http import QueryDict

from catalog.services import DEFAULT_PER_PAGE, MAX_OPTION_FILTERS, PER_PAGE_CHOICES, SORTS, ListingQuery

MAX_VALUES = 20
OPTION_PARAM = re.compile(r"^o_[a-z0-9-]{1,60}$")
SEARCH_MAX_LENGTH = 200


class ListingForm(forms.Form):
    sort = forms.ChoiceField(choices=list(SORTS.items()), required=False)
    per_page = forms.TypedChoiceField(
        choices=[(n, n) for n in PER_PAGE_CHOICES], coerce=int, required=False, label="Per page"
    )
    price_min = forms.DecimalField(min_value=0, max_digits=12, decimal_places=2, required=False, label="Min price")
    price_max = forms.DecimalField(min_value=0, max_digits=12, decimal_places=2, required=False, label="Max price")
    in_stock = forms.BooleanField(required=False, label="In stock only")

    def __init__(self, params: QueryDict, *, default_sort: str = "relevance") -> None:
        super().__init__(params)
        self.default_sort = default_sort
        self.notes: list[str] = []

    def clean(self) -> dict:
        cleaned = super().clean()
        low, high = cleaned.get("price_min"), cleaned.get("price_max")
        if low is not None and high is not None and low > high:
            self.add_error("price_max", "The maximum price is below the minimum price.")
        return cleaned

    def listing_query(self, page: int) -> ListingQuery:
        """The query to run: every valid filter; every invalid one is left out and explained in errors_text()."""
        self.is_valid()
        data = {name: value for name, value in self.cleaned_data.items() if name not in self.errors}
        brands = tuple(dict.fromkeys(b[:140] for b in self.data.getlist("brand") if b))[:MAX_VALUES]
        options: list[tuple[str, tuple[str, ...]]] = []
        for key in sorted(k for k in self.data if OPTION_PARAM.match(k)):
            values = tuple(dict.fromkeys(v[:120] for v in self.data.getlist(key) if v))[:MAX_VALUES]
            if values:
                options.append((key[2:], values))
        if len(options) > MAX_OPTION_FILTERS:
            self.notes.append(f"Only the first {MAX_OPTION_FILTERS} option filters were applied.")
            options = options[:MAX_OPTION_FILTERS]
        price_min: Decimal | None = data.get("price_min")
        price_max: Decimal | None = data.get("price_max")
        if "price_max" in self.errors:
            price_max = None
        return ListingQuery(
            sort=data.get("sort") or self.default_sort,
            page=page,
            per_page=data.get("per_page") or DEFAULT_PER_PAGE,
            brands=brands,
            price_min=price_min,
            price_max=price_max,
            in_stock=bool(data.get("in_stock")),
            options=tuple(options),
        )

    def errors_text(self) -> list[str]:
        texts = []
        for name, errors in self.errors.items():
            label = self.fields[name].label or name.replace("_", " ").capitalize() if name in self.fields else ""
            for error in errors:
                texts.append(f"{label}: {error} This filter was not applied." if label else error)
        return texts + self.notes


def page_number(params: QueryDict) -> int | None:
    """The ?page= number, or None when it is not a whole number of at least 1."""
    raw = params.get("page", "1")
    if not raw.isdigit() or len(raw) > 6 or int(raw) < 1:
        return None
    return int(raw)


def search_text(params: QueryDict) -> tuple[str, bool]:
    """The search text, trimmed to SEARCH_MAX_LENGTH; the flag says whether it was shortened."""
    text = " ".join(params.get("q", "").split())
    return text[:SEARCH_MAX_LENGTH], len(text) > SEARCH_MAX_LENGTH
