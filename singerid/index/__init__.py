"""Stage 2 storage: FAISS vectors, the SQL metadata store, embedding shards, the home and its manifest.

Modules (import the one you need; none is imported here so that light modules stay light):
  choice       IndexSpec, choose_index_key, estimate_index_bytes (pure arithmetic)
  vectors      VectorIndex (FAISS only), exact_search ground truth
  schema       SQLAlchemy ORM tables;  store: MetadataStore (SQLAlchemy only); store_records
  shards       ShardSet: append-only float32 embedding files, crash repair
  home         Home paths, Manifest (manifest.json)
  consistency  find_problems: model vs store vs index vs manifest
  files        atomic writes and checksums
"""
