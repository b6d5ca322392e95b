"""Credentials: key store, CAMS signature verification, token hashing, secret encryption."""
