"""Platform administration (system admins): impersonation now; businesses management next."""
