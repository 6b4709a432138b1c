"""CSV ingest: parse, validate (file:line errors), convert to store batches."""
