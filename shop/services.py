"""Public face of shop: the functions other modules may call (keyword-only, plain values in and out).

Nothing is offered yet; the issue that builds shop adds its services here.
"""
