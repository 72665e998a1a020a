"""Inbound lead webhooks: endpoints a business manages (``router``) and the public post (``public``)."""
