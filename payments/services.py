"""Public face of payments: the functions other modules may call (keyword-only, plain values in and out).

Nothing is offered yet; the issue that builds payments adds its services here.
"""
