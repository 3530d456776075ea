"""Public face of recommendations: the functions other modules may call (keyword-only, plain values in and out).

Nothing is offered yet; the issue that builds recommendations adds its services here.
"""
