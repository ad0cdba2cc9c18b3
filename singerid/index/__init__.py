"""Stage 2 storage: FAISS vectors, the SQL metadata store, embedding shards, the home and its manifest.

Modules (import the one you need; none is imported here so that light modules stay light):
  choice       IndexSpec, choose_index_key, estimate_index_bytes / estimate_disk_bytes (pure arithmetic)
  vectors      VectorIndex (FAISS only): build from any row source in chunks, add, remove, search, save, load
  ondisk       IVF inverted lists in a memory-mapped .ivfdata file (FAISS OnDiskInvertedLists)
  rows         ShardRows: stored embeddings as a lazy (n, d) matrix read from the shards in chunks
  exact        exact_search: blockwise float64 ground truth for approximate indexes
  schema       SQLAlchemy ORM tables;  store: MetadataStore (SQLAlchemy only); store_records
  shards       ShardSet: append-only float32 embedding files, crash repair
  home         Home paths, Manifest (manifest.json)
  consistency  find_problems: model vs store vs index vs manifest
  files        atomic writes and checksums
"""
