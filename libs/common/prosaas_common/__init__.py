"""ProSaaS shared library: settings, logging, DNS backoff, database, models, Redis and jobs."""

__version__ = "0.1.0"
