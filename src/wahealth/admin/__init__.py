"""The admin API (/api/v1/admin/) and the use cases it shares with the CLI."""
