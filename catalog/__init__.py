"""catalog: categories, products, variants, prices, stock, reservations, images. Public: services, events."""
