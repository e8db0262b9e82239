"""What admins use: the cache API (``/cache/delete``, ``DELETE /cache/{key}``), ``/status``,
``/metrics``, and the dashboard at ``/admin`` with its login, forms, gallery thumbnails and
vision panel. It reads every room through that room's own API and owns no state of its own."""
