"""BiLSTM-CRF tagger for movie-query entities: reading, batching, training, tagging, scoring."""

from .tagger import Tagger

__all__ = ["Tagger"]
