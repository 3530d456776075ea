"""Domain events of catalog (frozen dataclasses named "catalog.<thing>.<happened>.v<N>", see kernel.events).

None are published yet; the issue that builds catalog adds them here.
"""
