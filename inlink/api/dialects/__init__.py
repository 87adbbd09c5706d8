"""Vendor dialects: each parses its vendor's parameters, calls the query layer and renders
the vendor's field names and error envelope (no SQL, no I/O of its own)."""
