"""bin/promote: make a registered model version (id, name, or sha256 prefix) current for new
jobs. Workers pick it up for the next job without a restart; a job already submitted keeps
the version it was submitted with. NERQ_MODEL, when set, still wins over the promoted version."""

from __future__ import annotations

import argparse
import os
import sys

from sqlalchemy import or_, select

import storage

from .common import run


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bin/promote", description=__doc__)
    p.add_argument("version", help="model version id (see bin/models), name, or sha256 prefix (8+ chars)")
    return p


def find_version(session, ref: str) -> storage.ModelVersion:
    if ref.isdigit():
        return storage.get_model_version(session, int(ref))
    conditions = [storage.ModelVersion.name == ref]
    if len(ref) >= 8:
        conditions.append(storage.ModelVersion.sha256.startswith(ref.lower()))
    found = list(session.scalars(select(storage.ModelVersion).where(or_(*conditions))))
    if len(found) != 1:
        raise storage.NotFound(f"{'no' if not found else 'more than one'} model version matches {ref!r} (see bin/models)")
    return found[0]


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    with storage.session_scope() as session:
        version = storage.promote_model_version(session, find_version(session, args.version).id)
        vid, name, path = version.id, version.name, version.path
    print(f"model version {vid} ({name}, {path}) is now current for new jobs")
    if os.environ.get("NERQ_MODEL"):
        print(f"bin/promote: note: NERQ_MODEL={os.environ['NERQ_MODEL']} is set and wins over the promoted "
              "version where it is set", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main, "bin/promote"))
