"""The image route: GET /prompt/{description} -> cache -> prompt LLM -> pool -> safety rewrite ->
Pollinations fallback -> cache."""
