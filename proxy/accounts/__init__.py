"""Profiles, prompts, activity, the blacklist and stored frames: SQLite (WAL) under DATA_DIR."""
