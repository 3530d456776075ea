"""The category tree (cached) and what follows a change to categories. Private to catalog."""

from __future__ import annotations

import contextlib
import logging
from collections import defaultdict

from django.core.cache import cache
from django.db import transaction

from catalog.data import TREE_CACHE_KEY, CategoryInfo, CategoryTree
from catalog.events import CategoriesChanged
from catalog.models import Category
from kernel.bus import publish
from kernel.db import db_for_module

logger = logging.getLogger(__name__)


def category_tree() -> CategoryTree:
    try:
        tree = cache.get(TREE_CACHE_KEY)
    except Exception:  # cache unreachable: read the database instead of failing the page
        logger.warning("cache unavailable; reading the category tree from the database", exc_info=True)
        tree = None
    if tree is None:
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
        tree = CategoryTree(tuple(ordered))
        with contextlib.suppress(Exception):
            cache.set(TREE_CACHE_KEY, tree, timeout=60 * 60)
    return tree


def categories_changed(*, category_id: int) -> None:
    """Call after any change to categories: refreshes the cached tree and tells the rest of the shop."""
    transaction.on_commit(lambda: cache.delete(TREE_CACHE_KEY), using=db_for_module("catalog"))
    cache.delete(TREE_CACHE_KEY)
    publish(CategoriesChanged(category_id=category_id))
