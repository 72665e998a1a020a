"""ProSaaS scheduler service."""
