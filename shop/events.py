"""Domain events of shop (frozen dataclasses named "shop.<thing>.<happened>.v<N>", see kernel.events).

None are published yet; the issue that builds shop adds them here.
"""
