"""The embedded SQLite database under DATA_DIR (WAL): the connection, its one dedicated thread,
the schema and the change counters. Accounts and security keep their tables here; what the rows
mean lives with them (``proxy.accounts``, ``proxy.security``), not in this package."""
