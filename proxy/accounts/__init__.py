"""Accounts: the profiles of the glasses and VisionAI users, kept in the SQLite file under DATA_DIR
(through ``proxy.db``) - their auth keys (as HMACs) and provider keys (encrypted, ``keyring``),
custom prompts, sessions (with a Redis twin), activity, stored frames and retention - each
worker's cache of them (``users``), who is calling (``identity``), and Frame-Backend's account
routes (``/auth-{key}``, ``/prompt-{username}``, ``/profile``). Limits and the blacklist are
security's (``proxy.security``); the admin commands are in ``proxy.cli``."""
