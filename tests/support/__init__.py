"""Test helpers: fake upstreams that are real HTTP servers on 127.0.0.1 speaking the providers'
wire formats, a TLS CA of the tests' own, the vision rig, Redis fixtures, and helpers that drive
the real app and CLI. No test lives here."""
