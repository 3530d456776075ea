"""Public face of orders: the functions other modules may call (keyword-only, plain values in and out).

Nothing is offered yet; the issue that builds orders adds its services here.
"""
