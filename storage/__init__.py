"""Jobs, tagged sentences, entities, model versions and evaluation runs in SQL (SQLite or
PostgreSQL). Open a transaction with session_scope() and pass its session to the functions
here, which never commit themselves, so callers choose the transaction. Records users create
(ModelVersion, Job, EvaluationRun) come back as ORM rows; state read for a decision or a
display (ChunkInfo, JobProgress) as frozen dataclasses. The schema is documented for users in
docs/sql.md. Never imports model.

One module per room: models (model versions), jobs (jobs, sentences, job state and results),
chunks (the chunk state machine), evaluations (evaluation runs). Each module's __all__ is
what it adds to this package's face, the one list of exported names."""

from . import _common, chunks, db, engine, evaluations, jobs, migrate, models, schema
from ._common import *  # noqa: F403
from .chunks import *  # noqa: F403
from .db import *  # noqa: F403
from .engine import *  # noqa: F403
from .evaluations import *  # noqa: F403
from .jobs import *  # noqa: F403
from .migrate import *  # noqa: F403
from .models import *  # noqa: F403
from .schema import *  # noqa: F403

__all__ = [
    *_common.__all__, *models.__all__, *jobs.__all__, *chunks.__all__, *evaluations.__all__,
    *db.__all__, *engine.__all__, *migrate.__all__, *schema.__all__,
]
