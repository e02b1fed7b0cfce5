"""The event loop's side: sockets (consumers, routing, authentication), running actions from
the loop (edges), the send queue, presence and liveness, rate limits, the channel layer."""
