"""A plugin module that forgot its ``register(types)`` function."""

REGISTER = None  # not a function, and not called register
