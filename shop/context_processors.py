from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from catalog.services import category_tree
from shop import cart
from shop.cart_views import cart_storage
from shop.info_pages import REQUIRED_PAGES


def navigation(request: HttpRequest) -> dict:
    """Top-level categories (the tree is cached: no query), the number of items in the cart for the header, the
    info pages for the footer (a constant: no query)."""
    return {
        "nav_categories": category_tree().roots,
        "INFO_PAGE_LINKS": REQUIRED_PAGES,
        "cart_count": SimpleLazyObject(lambda: cart.count(cart_storage(request))),
    }
