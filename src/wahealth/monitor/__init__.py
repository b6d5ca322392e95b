"""Fleet monitor: refresh loop, transitions, alert outbox, Meta webhook ingestion."""
