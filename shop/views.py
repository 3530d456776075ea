"""Storefront pages. Thin: they read through catalog's services, cache what every visitor sees alike (shop.caching)
and render templates. Bad input is explained on the page or answered with a 404, never a 500."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from urllib.parse import urlencode

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe

from catalog.services import (
    PER_PAGE_CHOICES,
    SORTS,
    CategoryInfo,
    CategoryNotFound,
    Facet,
    FacetValue,
    ListingQuery,
    PageOutOfRange,
    ProductDetail,
    ProductNotFound,
    category_tree,
    listing_facets,
    product_detail,
    product_listing,
    product_suggest,
    products_featured,
    products_newest,
)
from shop import caching, recs
from shop.cart_views import cart_storage
from shop.forms import ListingForm, page_number, search_text
from shop.info_pages import render_content
from shop.models import InfoPage
from shop.templatetags.shop_tags import availability, money, slug_url

CSRF_MARKER = b"<!--csrf-->"
RECS_MARKER = b"<!--recs-->"  # where a page's recommendation slots go (rendered outside its cacheable part)
# catalog suggests products and categories by slug; these are the pages they link to
SUGGESTION_ROUTES = {"product": "shop:product", "category": "shop:category"}


@dataclass(frozen=True)
class Part:
    """The cacheable part of a page: the same for every visitor."""

    title: str
    head: str
    body: str
    # the page's product and its category (product pages), for the slots rendered around the part
    product_id: int | None = None
    category_id: int | None = None


# Renders a page's recommendation slots; personal=False for the shared page of a visitor with no session and no
# recently viewed list (no cart, nothing viewed), which is cached whole with them.
Slots = Callable[[Part, bool], str]


def _page(
    request: HttpRequest,
    name: str,
    version_keys: tuple[str, ...],
    build: Callable[[], Part],
    notices: list[str] | None = None,
    search_value: str = "",
    slots: Slots | None = None,
    seen: Callable[[Part, HttpResponse], None] | None = None,
) -> HttpResponse:
    """Render a storefront page around its cacheable part.

    A visitor with no session and no pending messages sees exactly what every such visitor sees, so the whole
    page is cached for them (a hit costs two cache reads). Everyone else gets the part from the cache and the
    rest (header, notices) rendered for them. The recommendation slots (`slots`) go where the part has
    RECS_MARKER: in the whole cached page for the first kind of visitor (they have no cart and viewed nothing, so
    theirs are everyone's), rendered for this request for everyone else (their cart, what they viewed).
    `seen(part, response)` runs for every request (the product page records the view in the visitor's cookie).
    """
    context = {"notices": notices or [], "search_value": search_value}
    personal = (
        request.user.is_authenticated or settings.SESSION_COOKIE_NAME in request.COOKIES or recs.has_viewed(request)
    )
    anonymous = not personal and "messages" not in request.COOKIES
    if anonymous and not notices and caching.enabled():

        def whole() -> tuple[str, Part]:
            part = caching.cached(name, version_keys, build)
            html = render_to_string("shop/page.html", {**context, "part": part}, request)
            html = html.replace(RECS_MARKER.decode(), slots(part, False)) if slots else html
            return html, replace(part, head="", body="")  # the part's ids, for `seen`

        html, part = caching.cached(f"whole:{name}", version_keys, whole)
        response = HttpResponse(html)
    else:
        part = caching.cached(name, version_keys, build)
        response = render(request, "shop/page.html", {**context, "part": part})
        if slots and RECS_MARKER in response.content:
            response.content = response.content.replace(RECS_MARKER, slots(part, personal).encode())
    if seen is not None:
        seen(part, response)
    has_form = CSRF_MARKER in response.content
    if has_form:  # the shared HTML gets this visitor's own form token
        token = f'<input type="hidden" name="csrfmiddlewaretoken" value="{get_token(request)}">'.encode()
        response.content = response.content.replace(CSRF_MARKER, token)
    if request.user.is_authenticated or notices or has_form or request.session.modified or response.cookies:
        patch_cache_control(response, private=True, no_cache=True)
    else:
        patch_cache_control(response, public=True, max_age=settings.SHOP_PUBLIC_MAX_AGE)
    patch_vary_headers(response, ["Cookie"])
    return response


def _render_part(name: str, context: dict, **ids: int | None) -> Part:
    context = {"SHOP_NAME": settings.SHOP_NAME, **context}
    return Part(
        title=context["title"],
        head=render_to_string(f"shop/parts/{name}_head.html", context),
        body=render_to_string(f"shop/parts/{name}_body.html", context),
        **ids,
    )


def _render_slots(*slots: recs.Slot | None) -> str:
    return "".join(render_to_string("shop/_recs_slot.html", {"slot": slot}) for slot in slots if slot is not None)


def _query_string(query: ListingQuery, text: str = "") -> str:
    """The canonical query string of a listing, without the page number."""
    params: list[tuple[str, str]] = []
    if text:
        params.append(("q", text))
    params += [("brand", b) for b in query.brands]
    for key, values in query.options:
        params += [(f"o_{key}", v) for v in values]
    if query.price_min is not None:
        params.append(("price_min", str(query.price_min)))
    if query.price_max is not None:
        params.append(("price_max", str(query.price_max)))
    if query.in_stock:
        params.append(("in_stock", "on"))
    if query.sort != "relevance":
        params.append(("sort", query.sort))
    if query.per_page != 24:
        params.append(("per_page", str(query.per_page)))
    return urlencode(params)


@dataclass(frozen=True)
class FilterChip:
    """One chosen filter value above the results: what it is, and the listing without it."""

    label: str  # "Brand", "Colour", "Price"
    value: str  # "Acme", "Teal", "10 to 50 EUR"
    remove_url: str  # the same listing (text, other filters, sort, page size) without this value, page 1


def _href(query: ListingQuery, text: str) -> str:
    qs = _query_string(query, text)
    return f"?{qs}" if qs else "?"


def _price_text(query: ListingQuery, currency: str) -> str:
    if query.price_min is not None and query.price_max is not None:
        return f"{money(query.price_min, currency)} to {money(query.price_max, currency)}"
    if query.price_min is not None:
        return f"from {money(query.price_min, currency)}"
    return f"up to {money(query.price_max, currency)}"


def filter_chips(query: ListingQuery, facets: tuple[Facet, ...], text: str = "") -> list[FilterChip]:
    """A chip per chosen filter value, in the order of the filter panel: brands, options, price, availability.

    Each chip links to the listing without that one value (the price range is one chip: both bounds go). A brand
    or option value the facets do not know (nothing here carries it any more) keeps its raw value as its label.
    """
    labels = {(facet.key, v.value): v.label for facet in facets for v in facet.values}
    names = {facet.key: facet.label for facet in facets}
    currency = settings.SHOP_CURRENCY
    chips = [
        FilterChip(
            "Brand",
            labels.get(("brand", slug), slug),
            _href(replace(query, brands=tuple(b for b in query.brands if b != slug)), text),
        )
        for slug in query.brands
    ]
    for key, values in query.options:
        for value in values:
            rest = tuple(v for v in values if v != value)
            options = tuple((k, rest if k == key else vs) for k, vs in query.options if k != key or rest)
            chips.append(
                FilterChip(
                    names.get(f"o_{key}", key.replace("-", " ").capitalize()),
                    labels.get((f"o_{key}", value), value),
                    _href(replace(query, options=options), text),
                )
            )
    if query.price_min is not None or query.price_max is not None:
        chips.append(
            FilterChip(
                "Price", _price_text(query, currency), _href(replace(query, price_min=None, price_max=None), text)
            )
        )
    if query.in_stock:
        chips.append(FilterChip("Availability", "In stock only", _href(replace(query, in_stock=False), text)))
    return chips


# A facet shows this many values; the rest (but the chosen ones, always shown) wait behind "Show N more".
FACET_VALUES_SHOWN = 8


@dataclass(frozen=True)
class FacetGroup:
    facet: Facet
    shown: tuple[FacetValue, ...]
    more: tuple[FacetValue, ...]


def facet_groups(facets: tuple[Facet, ...]) -> list[FacetGroup]:
    """Each facet's values split into those shown at once (the first few and every chosen one) and the others."""
    groups = []
    for facet in facets:
        shown = [v for i, v in enumerate(facet.values) if i < FACET_VALUES_SHOWN or v.selected]
        if len(facet.values) - len(shown) < 2:  # "Show 1 more" would take the room of the value itself
            shown = list(facet.values)
        more = tuple(v for v in facet.values if v not in shown)
        groups.append(FacetGroup(facet, tuple(shown), more))
    return groups


def _listing_context(query: ListingQuery, listing, text: str = "") -> dict:
    qs = _query_string(query, text)
    facets = listing.facets if listing is not None else ()
    chips = filter_chips(query, facets, text)
    return {
        "listing": listing,
        "query": query,
        "query_string": qs,
        "page_prefix": f"?{qs}&page=" if qs else "?page=",
        "sorts": SORTS,
        "per_page_choices": PER_PAGE_CHOICES,
        "filtered": bool(chips),
        "chips": chips,
        "facet_groups": facet_groups(facets),
        # every filter off; the search text, the sort and the page size stay
        "clear_url": _href(ListingQuery(sort=query.sort, per_page=query.per_page), text),
    }


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    def build() -> Part:
        tree = category_tree()
        return _render_part(
            "home",
            {
                "title": f"{settings.SHOP_NAME}: good things, delivered",
                "sections": [(root, tree.children(root.id)) for root in tree.roots()],
                "featured": products_featured(limit=8),
                "newest": products_newest(limit=8),
            },
        )

    def slots(part: Part, personal: bool) -> str:
        if not personal:  # no session: nothing viewed, nothing bought, nothing to go on
            return ""
        in_cart = recs.cart_product_ids(cart_storage(request))
        viewed = recs.viewed(request)
        user_id = request.user.pk if request.user.is_authenticated else None
        return _render_slots(
            recs.recommended_for_you(user_id=user_id, viewed=viewed, cart_product_ids=in_cart),
            recs.recently_viewed_slot(viewed=viewed, cart_product_ids=in_cart),
        )

    return _page(request, "home", (caching.LISTING,), build, slots=slots)


@require_safe
def category(request: HttpRequest, slug: str) -> HttpResponse:
    tree = category_tree()
    try:
        node = tree.get(slug=slug)
    except CategoryNotFound:
        raise Http404("No such category") from None
    page = page_number(request.GET)
    if page is None:
        raise Http404("No such page")
    form = ListingForm(request.GET)
    query = form.listing_query(page)

    def build() -> Part:
        # With the page cache, the counts are kept for every sort and page of these filters; without it,
        # product_listing counts them on the same snapshot of the facet index as its page.
        facets = (
            caching.cached(
                f"facets:category:{node.id}:{query.filter_key}",
                (caching.LISTING,),
                lambda: listing_facets(query=query, category_id=node.id),
            )
            if caching.enabled()
            else None
        )
        try:
            listing = product_listing(query=query, category_id=node.id, facets=facets)
        except PageOutOfRange:
            raise Http404("No such page") from None
        return _render_part(
            "category",
            {
                "title": node.name if page == 1 else f"{node.name} (page {page})",
                "category": node,
                "breadcrumbs": tree.ancestors(node.id),
                "children": tree.children(node.id),
                **_listing_context(query, listing),
            },
        )

    return _page(request, f"category:{node.id}:{query!r}", (caching.LISTING,), build, form.errors_text())


@require_safe
def search(request: HttpRequest) -> HttpResponse:
    text, shortened = search_text(request.GET)
    page = page_number(request.GET)
    if page is None:
        raise Http404("No such page")
    form = ListingForm(request.GET)
    query = form.listing_query(page)
    notices = form.errors_text()
    if shortened:
        notices.insert(0, "Your search was very long: only its first 200 characters were used.")

    def build() -> Part:
        listing = None
        if text:
            # With the page cache, the counts are kept for every sort and page of this search; without it,
            # product_listing counts them from the same read of the matching products as its page.
            facets = (
                caching.cached(
                    f"facets:search:{text.lower()}:{query.filter_key}",
                    (caching.LISTING,),
                    lambda: listing_facets(query=query, text=text),
                )
                if caching.enabled()
                else None
            )
            try:
                listing = product_listing(query=query, text=text, facets=facets)
            except PageOutOfRange:
                raise Http404("No such page") from None
        return _render_part(
            "search",
            {
                "title": f"Search: {text}" if text else "Search",
                "text": text,
                **_listing_context(query, listing, text),
            },
        )

    return _page(request, f"search:{text}:{query!r}", (caching.LISTING,), build, notices, search_value=text)


@require_safe
@cache_control(public=True, max_age=60)
def suggest(request: HttpRequest) -> JsonResponse:
    text, _ = search_text(request.GET)

    def build() -> list[dict[str, str]]:
        return [
            {"title": s.title, "url": reverse(SUGGESTION_ROUTES[s.kind], args=[s.slug]), "kind": s.kind}
            for s in product_suggest(text=text, limit=8)
        ]

    suggestions = caching.cached(f"suggest:{text.lower()}", (caching.LISTING,), build) if len(text) >= 2 else []
    return JsonResponse({"query": text, "suggestions": suggestions})


def _picker_data(detail: ProductDetail) -> dict:
    """What the variant picker's script needs to follow a choice without asking the server."""
    return {
        "groups": [{"key": g.key, "name": g.name, "colour": g.is_colour} for g in detail.option_groups],
        "variants": [
            {
                "id": v.id,
                "values": list(detail.values_of(v)),
                "colour": detail.colour_of(v),
                "price": money(v.price, v.currency),
                "compare": money(v.compare_at_price, v.currency),
                "stock": availability(v.available),
                "inStock": v.in_stock,
                "sku": v.sku,
            }
            for v in detail.variants
        ],
    }


def _option_choice(request: HttpRequest, slug: str, wanted: int | None) -> HttpResponse | None:
    """Without JavaScript the picker's "Show this choice" sends the values chosen (?o_colour=Rose&o_size=M): the
    answer is a redirect to the variant they make (?variant=<id>), the address the page is cached under."""
    values = {k.removeprefix("o_"): v[:120] for k, v in request.GET.items() if k.startswith("o_") and len(k) < 64}
    if not values:
        return None
    try:
        detail = product_detail(slug=slug)
    except ProductNotFound:
        raise Http404("No such product") from None
    keys = {g.key for g in detail.option_groups}
    current = next((v for v in detail.variants if v.id == wanted), None)
    target = detail.variant_for({k: v for k, v in values.items() if k in keys}, current=current)
    address = reverse("shop:product", args=[detail.slug])
    return redirect(f"{address}?variant={target.id}" if target else address)


@require_safe
def product(request: HttpRequest, slug: str) -> HttpResponse:
    raw_variant = request.GET.get("variant", "")
    wanted = int(raw_variant) if raw_variant.isdigit() and len(raw_variant) < 12 else None
    choice = _option_choice(request, slug, wanted)
    if choice is not None:
        return choice

    def build() -> Part:
        try:
            detail = product_detail(slug=slug)
        except ProductNotFound:
            raise Http404("No such product") from None
        chosen = next((v for v in detail.variants if v.id == wanted), None) or next(
            (v for v in detail.variants if v.in_stock), detail.variants[0] if detail.variants else None
        )
        gallery = detail.images_for(detail.colour_of(chosen))
        breadcrumbs = category_tree().ancestors(detail.category_id)
        origin = request.build_absolute_uri("/").rstrip("/")
        canonical = origin + slug_url("shop:product", detail.slug)
        return _render_part(
            "product",
            {
                "title": detail.title,
                "product": detail,
                "chosen": chosen,
                "choices": detail.choices(chosen) if chosen is not None and detail.has_picker else (),
                "picker_data": _picker_data(detail) if detail.has_picker else None,
                "gallery": gallery,
                "main_image": gallery[0] if gallery else None,
                "breadcrumbs": breadcrumbs,
                "canonical": canonical,
                "origin": origin,
                "product_ld": _product_ld(detail, canonical, origin),
                "breadcrumb_ld": _breadcrumb_ld(breadcrumbs, detail.title, origin),
            },
            product_id=detail.id,
            category_id=detail.category_id,
        )

    def slots(part: Part, personal: bool) -> str:
        product_id = getattr(part, "product_id", None)  # (a part cached before the field existed has none)
        if product_id is None:
            return ""
        if not personal:  # the same for every visitor without a session: cached with their whole page
            return _render_slots(recs.also_bought(product_id=product_id, category_id=part.category_id))
        in_cart = recs.cart_product_ids(cart_storage(request))
        viewed = recs.viewed(request)
        html = _render_slots(
            recs.also_bought(product_id=product_id, category_id=part.category_id, cart_product_ids=in_cart),
            recs.recently_viewed_slot(viewed=viewed, current_product_id=product_id, cart_product_ids=in_cart),
        )
        return html

    def seen(part: Part, response: HttpResponse) -> None:
        if getattr(part, "product_id", None) is not None:
            recs.record_view(request, response, part.product_id)

    name = f"product:{slug}:{wanted or ''}:{request.get_host()}"
    return _page(request, name, (caching.LISTING, caching.product_key(slug)), build, slots=slots, seen=seen)


def _product_ld(detail: ProductDetail, canonical: str, origin: str) -> dict:
    """schema.org Product data for search engines."""
    data: dict = {
        "@context": "https://schema.org",
        "@type": "Product",
        "name": detail.title,
        "description": detail.description,
        "url": canonical,
        "image": [origin + image.large_url for image in detail.images],
        "offers": [
            {
                "@type": "Offer",
                "sku": v.sku,
                "name": v.label,
                "price": str(v.price),
                "priceCurrency": v.currency,
                "availability": f"https://schema.org/{'InStock' if v.in_stock else 'OutOfStock'}",
                "url": f"{canonical}?variant={v.id}",
            }
            for v in detail.variants
        ],
    }
    if detail.brand:
        data["brand"] = {"@type": "Brand", "name": detail.brand}
    return data


def _breadcrumb_ld(breadcrumbs: tuple[CategoryInfo, ...], title: str, origin: str) -> dict:
    items = [{"@type": "ListItem", "position": 1, "name": "Home", "item": origin + "/"}]
    for crumb in breadcrumbs:
        item = origin + slug_url("shop:category", crumb.slug)
        items.append({"@type": "ListItem", "position": len(items) + 1, "name": crumb.name, "item": item})
    items.append({"@type": "ListItem", "position": len(items) + 1, "name": title})
    return {"@context": "https://schema.org", "@type": "BreadcrumbList", "itemListElement": items}


@require_safe
@cache_control(public=True, max_age=3600)
def robots_txt(request: HttpRequest) -> HttpResponse:
    lines = [
        "User-agent: *",
        "Disallow: /admin/",
        "Disallow: /api/",
        "Disallow: /search/",
        f"Sitemap: {request.build_absolute_uri('/sitemap.xml')}",
        "",
    ]
    return HttpResponse("\n".join(lines), content_type="text/plain")


@require_safe
def info_page(request: HttpRequest, slug: str) -> HttpResponse:
    """A page staff write in the admin (delivery, returns, terms, ...), its placeholders filled from the settings."""
    page = InfoPage.objects.filter(slug=slug, is_published=True).first()
    if page is None:
        raise Http404("No such page")
    response = render(
        request,
        "shop/info_page.html",
        {"page": page, "content": render_content(page.content), "search_value": ""},
    )
    if settings.SESSION_COOKIE_NAME in request.COOKIES or request.user.is_authenticated:
        patch_cache_control(response, private=True, no_cache=True)
    else:
        patch_cache_control(response, public=True, max_age=settings.SHOP_PUBLIC_MAX_AGE)
    patch_vary_headers(response, ["Cookie"])
    return response
