"""Linkup: real-time chat for Django that does not lose, duplicate or reorder messages.

The package is layered; each layer imports only from those below it (`make lint` holds it):
core -> models -> store -> tasks -> actions -> realtime -> web. See docs/architecture.md.
"""

from linkup.core.protocol import PROTOCOL_VERSION

__version__ = "0.1.0"
__all__ = ["PROTOCOL_VERSION", "__version__"]
