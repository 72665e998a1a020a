"""Outbound webhook deliveries: list, inspect and re-send (``/api/webhooks/deliveries``)."""
