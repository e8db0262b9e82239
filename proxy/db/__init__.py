"""The embedded SQLite database under DATA_DIR (WAL): the connection, its one dedicated thread,
the schema and the change counters. Accounts, security and the dashboard's logouts keep their
tables here; what the rows mean lives with them (``proxy.accounts``, ``proxy.security``,
``proxy.admin.revocations``), not in this package."""
