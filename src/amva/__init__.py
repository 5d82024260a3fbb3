"""amva: activation-map variation analysis of face image quality assessment."""

__version__ = "0.1.0"
