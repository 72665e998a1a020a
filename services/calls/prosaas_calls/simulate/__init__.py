"""A simulated Twilio for the calls service: ``python -m prosaas_calls.simulate`` (``make call-demo``).

It places calls against a running calls service exactly as Twilio would (signed webhooks, TwiML, the
media-stream WebSocket at real-time pacing, marks echoed as audio plays), plays a caller's script, and
reports what a caller would have experienced: the bot's audio (as a WAV file), the transcript and the
per-call figures. It works with whatever voice provider the service runs.
"""
