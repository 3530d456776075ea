"""The category tree (cached), what follows a change to categories, and the services that create and change them.
Private to catalog."""

from __future__ import annotations

import contextlib
import logging
import pickle
import threading
from collections import defaultdict
from collections.abc import Iterable

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from catalog.data import (
    TREE_CACHE_KEY,
    UNSET,
    CatalogInvalid,
    CategoryInfo,
    CategoryNotFound,
    CategoryRecord,
    CategoryTree,
    Unset,
)
from catalog.events import CategoriesChanged
from catalog.models import Category, Product
from catalog.validation import Errors, check_count, check_slug, check_text
from kernel.bus import publish
from kernel.db import atomic, db_for_module, unique

logger = logging.getLogger(__name__)


# The tree one request has read, for its other readers (a category page asks for it in the view, the listing's
# filters, the facets and the page frame): read once per request, never carried from one request to the next.
_request = threading.local()


def request_started(**kwargs: object) -> None:
    _request.active, _request.tree = True, None


def request_finished(**kwargs: object) -> None:
    _request.active, _request.tree = False, None


def category_tree() -> CategoryTree:
    tree = getattr(_request, "tree", None)
    if tree is not None:
        return tree
    tree = _category_tree()
    if getattr(_request, "active", False):
        _request.tree = tree
    return tree


# The tree is kept in the cache as its pickle, and each process remembers the last pickle it read with the tree made
# from it: the same bytes give the same tree without making it again (building 35 frozen dataclasses and their
# lookups cost more than reading them), and any change gives other bytes.
_last_read: tuple[bytes, CategoryTree] | None = None


def _category_tree() -> CategoryTree:
    global _last_read
    try:
        blob = cache.get(TREE_CACHE_KEY)
    except Exception:  # cache unreachable: read the database instead of failing the page
        logger.warning("cache unavailable; reading the category tree from the database", exc_info=True)
        blob = None
    if isinstance(blob, bytes):
        last = _last_read
        if last is not None and last[0] == blob:
            return last[1]
        tree = pickle.loads(blob)  # noqa: S301 (written by this function, in the shop's own cache, as Django's are)
        _last_read = (blob, tree)
        return tree
    tree = _tree_from_database()
    with contextlib.suppress(Exception):
        cache.set(TREE_CACHE_KEY, pickle.dumps(tree, protocol=pickle.HIGHEST_PROTOCOL), timeout=60 * 60)
    return tree


def _tree_from_database() -> CategoryTree:
    rows = Category.objects.filter(is_active=True).values_list(
        "id", "name", "slug", "parent_id", "description", "position"
    )
    by_parent: dict[int | None, list[tuple]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: (r[5], r[1])):
        by_parent[row[3]].append(row)
    ordered: list[CategoryInfo] = []

    def walk(parent: int | None, depth: int) -> None:
        for cid, name, slug, parent_id, description, _ in by_parent.get(parent, []):
            ordered.append(CategoryInfo(cid, name, slug, parent_id, depth, description))
            walk(cid, depth + 1)

    walk(None, 0)  # a category under an inactive parent is hidden with it
    return CategoryTree(tuple(ordered))


def product_categories(*, product_ids: Iterable[int]) -> dict[int, tuple[int, ...]]:
    """Each product's category and the categories above it (ids, the product's own first), for rules that name a
    category and mean everything in it (vouchers, promotions). One query, whatever the number of products, plus
    the cached tree. A category hidden from the tree (inactive) still counts as the product's own."""
    rows = Product.objects.filter(pk__in=list(product_ids)).order_by().values_list("pk", "category_id")
    tree = category_tree()
    found = {}
    for product_id, category_id in rows:
        above = tuple(c.id for c in reversed(tree.ancestors(category_id)))
        found[product_id] = above or (category_id,)
    return found


def _forget_tree() -> None:
    _request.tree = None
    cache.delete(TREE_CACHE_KEY)


def categories_changed(*, category_id: int) -> None:
    """Call after any change to categories: refreshes the cached tree and tells the rest of the shop."""
    transaction.on_commit(_forget_tree, using=db_for_module("catalog"))
    _forget_tree()
    publish(CategoriesChanged(category_id=category_id))


def _record(category: Category) -> CategoryRecord:
    return CategoryRecord(
        id=category.pk,
        name=category.name,
        slug=category.slug,
        parent_id=category.parent_id,
        description=category.description,
        position=category.position,
        is_active=category.is_active,
        updated_at=category.updated_at,
    )


def _check(errors: Errors, category_id: int | None, values: dict) -> None:
    """Text, slug, position and parent of a category being saved (its id None when it is new)."""
    check_text(errors, Category, {k: values[k] for k in ("name", "slug", "description") if k in values})
    if values.get("slug", UNSET) is not UNSET and "slug" not in errors.found:
        check_slug(errors, values["slug"])
        if "slug" not in errors.found and Category.objects.filter(slug=values["slug"]).exclude(pk=category_id).exists():
            errors.add("slug", f"A category with the slug {values['slug']!r} exists already.")
    check_count(errors, "position", values.get("position", UNSET))
    parent_id = values.get("parent_id", UNSET)
    if parent_id is UNSET or parent_id is None:
        return
    parents = dict(Category.objects.values_list("id", "parent_id"))
    if parent_id not in parents:
        errors.add("parent_id", f"No category has the id {parent_id}.")
        return
    node, seen = parent_id, set()
    while node is not None and node not in seen:  # up from the new parent: the category must not be on the way
        if node == category_id:
            errors.add("parent_id", "A category cannot be placed under itself or one of its subcategories.")
            return
        seen.add(node)
        node = parents.get(node)


def category_create(
    *,
    name: str,
    slug: str | None = None,
    parent_id: int | None = None,
    description: str = "",
    position: int = 0,
    is_active: bool = True,
) -> CategoryRecord:
    """A new category (slug None: made from the name). Refreshes the cached tree and publishes CategoriesChanged,
    as a save in the admin does. Raises CatalogInvalid (a slug taken, no such parent, ...)."""
    slug = slugify(name) if slug is None else slug
    values = {"name": name, "slug": slug, "parent_id": parent_id, "description": description, "position": position}
    try:
        with atomic(module="catalog"):
            errors = Errors()
            _check(errors, None, values)
            if errors:
                raise CatalogInvalid(errors.found)
            category = Category.objects.create(is_active=bool(is_active), **values)
            categories_changed(category_id=category.pk)
    except IntegrityError:  # the same slug saved at the same moment
        if Category.objects.filter(slug=slug).exists():
            raise CatalogInvalid({"slug": [f"A category with the slug {slug!r} exists already."]}) from None
        raise
    return _record(category)


def category_update(
    *,
    category_id: int,
    name: str | Unset = UNSET,
    slug: str | Unset = UNSET,
    parent_id: int | Unset | None = UNSET,
    description: str | Unset = UNSET,
    position: int | Unset = UNSET,
    is_active: bool | Unset = UNSET,
) -> CategoryRecord:
    """Change the fields given (UNSET: left as they are; parent_id None: a top-level category). Moving a category
    under itself or one of its subcategories is refused. Refreshes the cached tree and publishes CategoriesChanged.
    Raises CategoryNotFound, CatalogInvalid."""
    given = {"name": name, "slug": slug, "parent_id": parent_id, "description": description, "position": position}
    given = {k: v for k, v in {**given, "is_active": is_active}.items() if v is not UNSET}
    try:
        with atomic(module="catalog"):
            category = unique(Category.objects.select_for_update().filter(pk=category_id))
            if category is None:
                raise CategoryNotFound(category_id)
            errors = Errors()
            _check(errors, category.pk, given)
            if errors:
                raise CatalogInvalid(errors.found)
            if given:
                for field, value in given.items():
                    setattr(category, field, bool(value) if field == "is_active" else value)
                category.save()
                categories_changed(category_id=category.pk)
    except IntegrityError:
        if isinstance(slug, str) and Category.objects.filter(slug=slug).exclude(pk=category_id).exists():
            raise CatalogInvalid({"slug": [f"A category with the slug {slug!r} exists already."]}) from None
        raise
    return _record(category)
