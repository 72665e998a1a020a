"""Phone calls as staff read them: the list, one call with its transcript, and figures."""
