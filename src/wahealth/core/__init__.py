"""Use cases (get health, refresh, sync) and the ports they need."""
