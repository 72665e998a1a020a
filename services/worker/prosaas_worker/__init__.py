"""ProSaaS worker service."""
