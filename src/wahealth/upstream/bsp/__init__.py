"""BSP upstreams: 360dialog (`GET /health_status` per channel) and Alibaba CAMS
(`GetWhatsappHealthStatus` through the official SDK), behind the health core's upstream
port (see `router`)."""
