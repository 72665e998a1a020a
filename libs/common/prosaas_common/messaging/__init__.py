"""Messages to leads: template variables, planning from appointments and follow-up rules."""
