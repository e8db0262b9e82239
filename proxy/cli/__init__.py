"""The command line: ``iris-proxy`` (``main``) runs the server by default and manages its data
with subcommands (``accounts``: profiles, activity, prompts; ``blacklist``; ``sign``: signed image
URLs), all on the same
settings and DATA_DIR as the server. Server processes themselves live in ``proxy.server``."""
