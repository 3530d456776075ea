"""Public face of catalog: the functions other modules may call (keyword-only, plain values in and out).

Nothing is offered yet; the issue that builds catalog adds its services here.
"""
