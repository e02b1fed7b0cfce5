"""Linkup: real-time chat for Django that does not lose, duplicate or reorder messages."""

__version__ = "0.1.0"
PROTOCOL_VERSION = 1
