"""Talking to upstream services: the weighted backend ``pool`` with its circuit ``breaker`` (and the
breaker's Redis twin, which shares cool-downs between instances), the OpenAI-compatible and
Pollinations clients, the guarded fetch of URLs an upstream answered with, and the ``transport``
they all speak through. What to do with an answer (images, vision) lives with its feature."""
