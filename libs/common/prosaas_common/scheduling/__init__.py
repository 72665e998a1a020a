"""Calendars and appointments shared by the api, the calls service and the worker: the availability
engine (:mod:`.availability`) and booking with its consequences (:mod:`.booking`)."""
