"""The store: pages, links with their history, events, ingest manifests (one DuckDB file)."""
