"""The bottom layer: errors and close codes, frame parsing, serialization, settings, logging,
shapes. Pure: no database, no channel layer, no Redis (`make lint` holds it)."""
