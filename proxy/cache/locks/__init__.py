"""The cross-process half of single flight: one lock per key, held by the one producing it."""
