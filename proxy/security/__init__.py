"""Who may do what: keys and tokens, generated secrets, limits and the blacklist."""
