"""The image cache: what it keeps under a key (``entry``), the cache as the routes see it (``images``,
with the variants of an image: the same image in other formats) with its per-process memory
``front`` and the large bodies it keeps for sendfile (``bodyfile``), the byte ``stores`` it stands
on, the ``generation`` that makes a delete reach every worker and instance, and ``flight``:
identical concurrent misses cost one trip, with its cross-process ``locks``. ``backing`` chooses the
store, generation and lock together. ``slots`` (with ``slots_redis``) bound the generations in
flight over the whole server. How an image is made is ``proxy.imagegen``'s business, not the
cache's."""
