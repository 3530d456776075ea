from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from catalog.services import category_tree
from shop import cart
from shop.cart_views import cart_storage


def navigation(request: HttpRequest) -> dict:
    """Top-level categories (the tree is cached: no query) and the number of items in the cart for the header."""
    return {
        "nav_categories": category_tree().roots,
        "cart_count": SimpleLazyObject(lambda: cart.count(cart_storage(request))),
    }
