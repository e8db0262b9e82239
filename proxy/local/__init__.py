"""Local models, run on this machine's CPU by ONNX Runtime (the ``local`` extra, imported only when
a setting asks for a local model): the thread pool every inference runs on, off the event loop,
bounded and under a deadline (``runtime``); image classifiers read from an ONNX file with their
preprocessing (``classifier``); the NSFW classifier of the safety check (``nsfw``). What the
cascade and the image pipeline do with their answers is ``proxy.vision``'s and ``proxy.imagegen``'s."""
