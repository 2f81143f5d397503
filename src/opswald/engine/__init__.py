"""The replay engine: one context, three tape policies."""
