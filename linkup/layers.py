"""Public: `CHANNEL_LAYERS` names `linkup.layers.EmbeddedChannelLayer` (linkup.realtime.layers)."""

from linkup.realtime.layers import EmbeddedChannelLayer

__all__ = ["EmbeddedChannelLayer"]
