"""The kinds of vision provider, one module each, behind the small interface of ``base``: ``chat``
(an OpenAI-compatible chat endpoint, asked for JSON) and ``onnx`` (an image classifier run on this
machine, ``proxy.local``). ``registry`` opens the kinds the settings use, by the providers' ``kind``."""
