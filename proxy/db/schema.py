"""The tables, created at start-up (``CREATE ... IF NOT EXISTS``)."""

from __future__ import annotations

SCHEMA = """
CREATE TABLE IF NOT EXISTS profiles (
    username TEXT PRIMARY KEY,
    key_hash BLOB NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    key_changed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS provider_keys (
    username TEXT NOT NULL REFERENCES profiles(username) ON DELETE CASCADE,
    name TEXT NOT NULL,
    secret BLOB NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (username, name)
);
CREATE TABLE IF NOT EXISTS prompts (
    username TEXT PRIMARY KEY REFERENCES profiles(username) ON DELETE CASCADE,
    text TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS activity (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL REFERENCES profiles(username) ON DELETE CASCADE,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS activity_user_at ON activity(username, at);
CREATE INDEX IF NOT EXISTS activity_at ON activity(at);
CREATE TABLE IF NOT EXISTS frames (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL REFERENCES profiles(username) ON DELETE CASCADE,
    at REAL NOT NULL,
    path TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    meta TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS frames_user_at ON frames(username, at);
CREATE INDEX IF NOT EXISTS frames_at ON frames(at);
CREATE TABLE IF NOT EXISTS blacklist (
    network TEXT PRIMARY KEY,
    reason TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    expires_at REAL
);
CREATE TABLE IF NOT EXISTS sessions (
    address TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    stamp TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions(username);
CREATE TABLE IF NOT EXISTS rate_buckets (
    bucket TEXT PRIMARY KEY,
    tat REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS spend (
    day TEXT NOT NULL,
    backend TEXT NOT NULL,
    images INTEGER NOT NULL,
    amount REAL NOT NULL,
    PRIMARY KEY (day, backend)
);
CREATE TABLE IF NOT EXISTS admin_revocations (
    sid TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""
