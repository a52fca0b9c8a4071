"""Tokenization: Chinese word segmentation, byte-level BPE, WordPiece."""
