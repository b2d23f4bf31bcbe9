"""Evidence storage: the content-addressed blob store and streaming ingest."""
