"""Glasses vision: the provider cascade with a judge, frames, dedup, and the /process and /analyze routes."""
