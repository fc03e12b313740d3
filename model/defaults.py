"""Inference defaults shared by the Tagger and bin/tag's options, importable without torch."""

DEFAULT_BATCH_SIZE = 256
DEFAULT_MAX_TOKENS = 8192  # padded tokens per batch: bounds memory for long inputs
