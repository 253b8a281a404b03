"""The pledge service: the ASGI app the pledge page and Stripe talk to."""
