"""Who may do what, and how often: the server's ``credentials`` (access key, admin token, signing
keys), the one ``admission`` rule (blacklist, key or URL signature, suspected guessing) and the
``gate`` that applies it to every request, ``signing`` (signed image URLs), the client's
``address`` behind trusted proxies, which requests come from another site (``origin``), rate
``limits`` (GCRA; SQLite and Redis twins), the ``blacklist`` (with its Redis signal twin), the
``guard`` that counts failed logins and auto-blocks, the ``peers`` watch that notices a reverse
proxy TRUSTED_PROXIES does not name, and the daily budget's ``spend`` ledger (SQLite, with
``spend_redis``). Who a profile is belongs to ``proxy.accounts``; what a new image may cost, put
together, to ``proxy.imagegen.allowance``."""
