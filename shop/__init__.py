"""shop: the storefront pages, the cart and the checkout. Public: services, events."""
