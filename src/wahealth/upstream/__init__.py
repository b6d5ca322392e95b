"""Upstream: the Meta Graph client and the built-in Meta emulator."""
