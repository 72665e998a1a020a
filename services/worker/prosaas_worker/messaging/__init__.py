"""Sending messages to leads: the channel interface, the Twilio SMS channel and the due-message dispatcher."""
