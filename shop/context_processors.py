from django.http import HttpRequest

from catalog.services import category_tree


def navigation(request: HttpRequest) -> dict:
    """Top-level categories for the header (the tree is cached, so this costs no query)."""
    return {"nav_categories": category_tree().roots}
