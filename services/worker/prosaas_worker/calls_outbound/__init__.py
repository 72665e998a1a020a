"""Outbound calls: Twilio's Calls REST API and placing a ``calls`` row's call exactly once."""
