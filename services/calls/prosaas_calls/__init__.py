"""ProSaaS calls service."""
