"""Dataset formats, the canonical record model, the Parquet store, video decoding and clip sampling."""
