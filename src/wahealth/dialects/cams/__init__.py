"""Alibaba Cloud CAMS RPC dialect (GetWhatsappHealthStatus)."""
