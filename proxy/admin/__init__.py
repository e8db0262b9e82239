"""What admins use: the cache API (``/cache/delete``, ``DELETE /cache/{key}``), ``/status``,
``/metrics``, and the dashboard at ``/admin`` with its login, forms, gallery thumbnails and
vision panel. It reads every room through that room's own API; its one state of its own is the
list of logged-out dashboard sessions (``revocations``, with its Redis twin)."""
