"""Domain events of orders (frozen dataclasses named "orders.<thing>.<happened>.v<N>", see kernel.events).

None are published yet; the issue that builds orders adds them here.
"""
