"""Per-account rate limiting: interface plus memory and Redis backends."""
