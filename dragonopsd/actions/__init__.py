"""Server actions (restart / stop / start): the service, its queue and its executors."""
