"""wahealth: WhatsApp Business messaging health, served in the dialects clients already speak."""

__version__ = "0.1.0"
