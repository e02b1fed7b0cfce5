"""Serve an ASGI app (the baseline or the ceiling) with the uvicorn options Linkup's own
server uses, so the comparison measures the application, not the server's settings.

    python bench/serve_asgi.py module:app PORT
"""

from __future__ import annotations

import os
import sys

import uvicorn

if __name__ == "__main__":
    # Run as a script, the app's package is found from the working directory.
    sys.path.insert(0, os.getcwd())
    app, port = sys.argv[1], int(sys.argv[2])
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        lifespan="off",
        ws_max_size=1024 * 1024,
        ws_per_message_deflate=False,
        ws_ping_interval=30.0,
        ws_ping_timeout=60.0,
        log_level="warning",
        access_log=False,
    )
