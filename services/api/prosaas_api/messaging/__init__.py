"""Messages to leads: appointment automations, status follow-up rules, template previews, one-off SMS."""
