from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from shop import cart
from shop.cart_views import cart_storage
from shop.chrome import chrome


def navigation(request: HttpRequest) -> dict:
    """The page frame's shared parts (shop.chrome: rendered once per process, no query) and the number of items
    in the cart for the header (read only if the page shows it)."""
    return {
        "chrome": chrome(),
        "cart_count": SimpleLazyObject(lambda: cart.count(cart_storage(request))),
    }
