"""ProSaaS api service: REST API behind the tenant SPA, plus health, version and metrics."""
