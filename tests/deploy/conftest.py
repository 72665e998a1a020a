"""Fixtures of the deploy suite: the live nginx instances and the services behind them."""

from tests.deploy.nginx_fixtures import degraded, front, services, tls

__all__ = ["degraded", "front", "services", "tls"]
