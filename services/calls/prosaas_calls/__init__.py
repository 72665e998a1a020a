"""ProSaaS calls service: Twilio voice webhooks and the media-stream WebSocket that runs the AI call."""
