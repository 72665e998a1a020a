"""The principal's own business and its settings."""
