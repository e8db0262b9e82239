"""Talking to upstream services: the weighted backend pool, its circuit breaker and the clients."""
