"""HTTP API: route table, middlewares, handlers per resource, OpenAPI."""
