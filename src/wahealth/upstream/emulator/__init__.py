"""The Meta emulator: an ASGI stand-in for the Graph API, driven by a scenario."""
