"""Who may do what, and how often: the server's ``credentials`` (access key, admin token), the
one ``admission`` rule (blacklist, key, suspected guessing) and the ``gate`` that applies it to
every request, the client's ``address`` behind trusted proxies, rate ``limits`` (GCRA; SQLite and
Redis twins), the ``blacklist`` (with its Redis signal twin) and the ``guard`` that counts failed
logins and auto-blocks. Who a profile is belongs to ``proxy.accounts``."""
