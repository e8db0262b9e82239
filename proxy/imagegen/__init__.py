"""Image generation: ``GET /prompt/{description}`` (``route``) and its cache-hit fast ``lane``;
the request's parameters and cache key (``params``, ``targets``); what a miss may cost
(``allowance``: limits per address and credential, slots, the daily budget); signing image URLs
for the owner (``sign``: ``POST /sign`` and the CLI's); the ``pipeline`` of a miss
(prompt LLM enhancement in ``prompts``, the weighted pool, the safety rewrite, the Pollinations
fallback, every answer checked to be an image by ``proxy.upstream.inspect``); the local safety
check of generated images (``safety``); the image answer (``reply``) and the gallery of fresh
images (``recent``). The pool and clients are ``proxy.upstream``'s, the cache ``proxy.cache``'s,
image hosts ``proxy.hosting``'s, running the safety check's model ``proxy.local``'s."""
