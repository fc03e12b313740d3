"""bin/models: registered model versions, newest first, with their latest recorded F1."""

from __future__ import annotations

import argparse
import json

from .common import positive_int, run
from .table import text_table


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bin/models", description=__doc__)
    p.add_argument("--limit", type=positive_int, default=20, help="how many versions (default 20)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    return p


def rows(limit: int) -> list[dict]:
    """The newest versions; `current` marks the one new jobs use (NERQ_MODEL, else the version
    promoted last, else var/models/current), matched by its resolved directory."""
    import storage  # SQLAlchemy and pydantic load here, not for --help

    from ..registry import current_model_path

    with storage.session_scope() as session:
        current = current_model_path(session)
        out = []
        for v in storage.latest_model_versions(session, limit):
            history = storage.evaluation_history(session, model_version_id=v.id)
            last = history[-1] if history else None
            out.append({
                "id": v.id, "name": v.name, "current": v.path == current,
                "created_at": v.created_at.isoformat(timespec="seconds"),
                "promoted_at": v.promoted_at.isoformat(timespec="seconds") if v.promoted_at else None,
                "test_f1": v.test_f1,
                "latest_f1": last.f1 if last else None,
                "latest_dataset": last.dataset if last else None,
                "latest_at": last.started_at.isoformat(timespec="seconds") if last else None,
                "latest_regression": last.regression if last else None,
                "path": v.path, "sha256": v.sha256,
            })
    return out


def _f1(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "-"


def _when(iso: str | None) -> str:
    return iso[:19].replace("T", " ") if iso else "-"


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    found = rows(args.limit)
    if args.json:
        for row in found:
            print(json.dumps(row))
        return 0
    if not found:
        print("no model versions registered yet (bin/train, or bin/evaluate --record --model DIR)")
        return 0
    header = ["", "id", "name", "created (UTC)", "test F1", "latest F1", "", "latest run (UTC)", "path"]
    table = [["*" if r["current"] else "", str(r["id"]), r["name"][:24], _when(r["created_at"]), _f1(r["test_f1"]),
              _f1(r["latest_f1"]), "!" if r["latest_regression"] else "", _when(r["latest_at"]), r["path"]]
             for r in found]
    print("\n".join(text_table(header, table, right={1, 4, 5})))
    print("* the model new jobs use (NERQ_MODEL, else bin/promote, else var/models/current); "
          "! latest run flagged as a regression")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main, "bin/models"))
