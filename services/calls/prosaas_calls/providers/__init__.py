"""Voice providers behind one small interface: OpenAI Realtime, the offline stack, a scripted one."""
