"""Sign-in: passwords, tokens, sessions, throttling, the acting principal and permissions."""
