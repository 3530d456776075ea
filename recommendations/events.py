"""Domain events of recommendations: frozen dataclasses named "recommendations.<thing>.<happened>.v<N>".

See kernel.events. None are published yet; the issue that builds recommendations adds them here.
"""
