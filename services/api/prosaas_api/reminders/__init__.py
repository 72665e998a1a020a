"""Staff reminders and the caller's in-app notifications."""
