"""Talking to upstream services: the weighted backend ``pool`` with its circuit ``breaker`` (health
per role, URL and model; the breaker's Redis twin shares cool-downs between instances), the
OpenAI-compatible (generations, edits, chat) and Pollinations clients, the ``guarded`` fetch of
URLs an upstream answered with (a backend's url answer, an image host's copy) or a client named
(input images), the check that bytes are an image
(``inspect``), and the ``transport`` they all speak through. What to do with an answer (images,
vision) lives with its feature."""
