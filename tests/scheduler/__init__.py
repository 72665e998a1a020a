"""Scheduler service tests."""
