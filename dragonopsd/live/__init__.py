"""Live events for websocket clients: the topic grammar, per-client queues and the hub."""
