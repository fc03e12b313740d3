"""bin/models: registered model versions, newest first, with their latest recorded F1."""

from __future__ import annotations

import argparse
import json

import storage

from .common import positive_int, run


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bin/models", description=__doc__)
    p.add_argument("--limit", type=positive_int, default=20, help="how many versions (default 20)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    return p


def rows(limit: int) -> list[dict]:
    with storage.session_scope() as session:
        current = storage.current_model_version(session)
        out = []
        for v in storage.latest_model_versions(session, limit):
            history = storage.evaluation_history(session, model_version_id=v.id)
            last = history[-1] if history else None
            out.append({
                "id": v.id, "name": v.name, "current": current is not None and current.id == v.id,
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
    print(f"{'':2}{'id':>4}  {'name':<24}{'created (UTC)':<22}{'test F1':>8}{'latest F1':>10}  {'latest run':<22}path")
    for r in found:
        mark = "* " if r["current"] else "  "
        flag = " !" if r["latest_regression"] else ""
        print(f"{mark}{r['id']:>4}  {r['name'][:23]:<24}{r['created_at'][:19]:<22}{_f1(r['test_f1']):>8}"
              f"{_f1(r['latest_f1']) + flag:>10}  {(r['latest_at'] or '-')[:19]:<22}{r['path']}")
    print("* current for new jobs (bin/promote); ! latest run flagged as a regression")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main, "bin/models"))
