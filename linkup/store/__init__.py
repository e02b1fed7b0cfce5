"""Reading what is stored: read paths (queries), access checks, the shared Redis (its clients,
keys and outages), and the operator's error records. No events, no channel layer."""
