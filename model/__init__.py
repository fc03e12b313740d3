"""BiLSTM-CRF tagger for movie-query entities: reading, batching, training, tagging, scoring.

`Tagger` is imported on first use, so that reading a corpus (model.corpus, model.data) or a
model directory's files (model.checkpoint) never pays for importing torch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .tagger import Tagger

__all__ = ["Tagger"]


def __getattr__(name: str) -> Any:
    """Tagger is imported on first use: reading corpora (model.corpus) must not load torch,
    so that bin/submit in queue mode starts fast and small."""
    if name == "Tagger":
        from .tagger import Tagger

        return Tagger
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
