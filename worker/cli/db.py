"""bin/db: create or migrate the database ($NERQ_DATABASE_URL, default var/nerqueue.db).

Other commands migrate on first use; this does it explicitly, e.g. before starting workers."""

from __future__ import annotations

import argparse
import sys

from sqlalchemy.exc import SQLAlchemyError

from storage.engine import database_url, display_url
from storage.migrate import current_revision, downgrade, head_revision, new_revision, upgrade

from ..errors import database_problem
from .common import run


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bin/db", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--url", help="database URL (default: $NERQ_DATABASE_URL, else sqlite:///var/nerqueue.db)")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("upgrade", help="migrate to the latest schema (creates the tables in an empty database)")
    sub.add_parser("current", help="show the database's schema revision; exit 1 if it is behind")
    down = sub.add_parser("downgrade", help="migrate back to REVISION ('base' drops every table)")
    down.add_argument("revision")
    rev = sub.add_parser("revision", help="(developers) write a migration for changes to storage/schema.py")
    rev.add_argument("-m", "--message", required=True)
    return p


def describe(revision: str | None) -> str:
    if revision is None:
        return "no schema (empty database)"
    return f"revision {revision}" + (" (head)" if revision == head_revision() else f" (head is {head_revision()})")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    url = args.url or database_url()
    try:
        if args.command == "upgrade":
            revision = upgrade(url)
        elif args.command == "downgrade":
            revision = downgrade(url, args.revision)
        elif args.command == "revision":
            new_revision(args.message, url)
            return 0
        else:
            revision = current_revision(url)
    except SQLAlchemyError as exc:  # a migration the database refused, too: the driver's line
        print(f"bin/db: error: {database_problem(exc, url)}", file=sys.stderr)
        return 2
    print(f"{display_url(url)}: {describe(revision)}")
    return 0 if revision == head_revision() or args.command == "downgrade" else 1


if __name__ == "__main__":
    raise SystemExit(run(main, "bin/db"))
