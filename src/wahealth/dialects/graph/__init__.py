"""Meta Graph dialect (GET /vN.M/{node}?fields=health_status)."""
