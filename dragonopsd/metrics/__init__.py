"""Prometheus metrics: the app's own registry, collectors that read in-memory state at scrape
time, and the exposition that renders 10,000 monitors off the event loop (exporter.py)."""
