"""HTTP endpoints beyond the dialects: node history (and the dashboard)."""
