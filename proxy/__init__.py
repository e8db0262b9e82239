"""Iris: an edge proxy for AI image generation and AI vision."""

__version__ = "0.1.0"
