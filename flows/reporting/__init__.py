"""What a run leaves behind to read: cost records and tables, media previews, lineage (data; no terminal code)."""
