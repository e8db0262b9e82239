"""Image generation: ``GET /prompt/{description}`` and ``/image/{description}`` (``route``) and its
cache-hit fast ``lane``; the OpenAI Images API and the model lists (``openai_api``: ``/v1/...``,
Pollinations' ``/models``), over the route's own machinery; the request's parameters and cache
key (``params``, ``targets``); the formats an image is served in (``formats``: ``format=``, or
``Accept``) and their variants, converted once (``variants``); what a miss may cost
(``allowance``: limits per address and credential, slots, the daily budget); signing image URLs
for the owner (``sign``: ``POST /sign`` and the CLI's); the ``pipeline`` of a miss
(prompt LLM enhancement in ``prompts``, the weighted pool, the safety rewrite, the Pollinations
fallback, image edits with ``image=``, refused prompts remembered, every answer checked to be an
image by ``proxy.upstream.inspect``); the local safety check of generated images (``safety``);
the image answer (``reply``) and the gallery of fresh images (``recent``). The pool and clients
are ``proxy.upstream``'s, the cache ``proxy.cache``'s, image hosts ``proxy.hosting``'s, running
the safety check's model ``proxy.local``'s."""
