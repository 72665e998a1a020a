"""Calendars, availability and appointments."""
