"""Local servers that speak the protocols of external services (for tests and benchmarks)."""
