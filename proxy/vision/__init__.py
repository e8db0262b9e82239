"""Vision: the glasses' ``POST /process`` and ``GET /health`` (``routes``), VisionAI's
``POST /analyze`` (``analyze``), the confidence ``cascade`` with its judge, what it asks
(``questions``), one question to one provider (``asking``) answered by the provider's kind
(``kinds``: a chat endpoint, or a local ONNX classifier), reading chat replies (``answers``), which
providers a user may use (``providers``), frames as they arrive (``form``, ``uploads``, ``frames``,
``jpeg``), repeated-scene ``dedup``, the glasses' answer shape (``display``) and what is recorded
afterwards (``records``).
Profiles and sessions are ``proxy.accounts``'s; the pool and breakers ``proxy.upstream``'s; running
local models ``proxy.local``'s."""
