"""The people of one business: list, invite, change role, deactivate."""
