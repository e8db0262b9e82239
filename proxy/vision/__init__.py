"""Vision: the glasses' ``POST /process`` and ``GET /health`` (``routes``), VisionAI's
``POST /analyze`` (``analyze``), the confidence ``cascade`` with its judge, one question to one
provider (``asking``), reading their replies (``answers``), which providers a user may use
(``providers``), frames as they arrive (``form``, ``uploads``, ``frames``, ``jpeg``), repeated-scene
``dedup``, the glasses' answer shape (``display``) and what is recorded afterwards (``records``).
Profiles and sessions are ``proxy.accounts``'s; the pool and breakers ``proxy.upstream``'s."""
