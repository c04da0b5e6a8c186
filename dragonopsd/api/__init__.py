"""HTTP API: route table, the request front, handlers per resource, OpenAPI."""
