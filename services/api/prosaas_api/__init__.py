"""ProSaaS api service."""
