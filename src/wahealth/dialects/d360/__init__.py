"""360dialog dialect (GET /health_status with D360-API-KEY)."""
