"""Tokenizers: byte-level BPE (``bpe``), WordPiece (``wordpiece``) and Chinese word segmentation."""
