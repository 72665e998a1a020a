"""The leads domain shared by the api (requests) and the worker (bulk changes, imports): every write
to a lead that other parts must see (status history, timeline, domain events) goes through here, so a
status changed by a kanban drag, a bulk job or an import is recorded the same way."""
