"""Domain events of payments (frozen dataclasses named "payments.<thing>.<happened>.v<N>", see kernel.events).

None are published yet; the issue that builds payments adds them here.
"""
