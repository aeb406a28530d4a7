"""Batches: rows (CSV or list) → each checked and planned → rows run as subflows within shared limits → results."""
