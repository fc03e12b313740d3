"""What every command shares: options, logging set-up and turning known errors into one clear line.

Imports nothing heavy (no torch, no pydantic): bin/status and every --help answer at once."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

from model.defaults import PRECISION_CHOICES
from model.devices import DEVICE_CHOICES

from ..errors import (BrokerUnavailable, ConfigError, InvalidRequest, JobNotResumable, TaggingProcessDied,
                      database_problem)
from ..regression import Thresholds


def user_errors() -> tuple[type[BaseException], ...]:
    """Errors a user can fix from the message alone: no traceback, exit status 2. Imported
    only when something was raised, so that --help loads neither SQLAlchemy nor torch."""
    from model.checkpoint import ModelLoadError
    from model.corpus import CorpusFormatError
    from model.data import CorpusNotFound
    from model.devices import DeviceUnavailable
    from storage import NotFound, SchemaMismatch

    return (CorpusFormatError, CorpusNotFound, ModelLoadError, DeviceUnavailable, BrokerUnavailable,
            ConfigError, InvalidRequest, JobNotResumable, TaggingProcessDied, NotFound, SchemaMismatch,
            FileNotFoundError, PermissionError, IsADirectoryError)


def database_errors() -> tuple[type[BaseException], ...]:
    """The database cannot be used as configured: unreachable, refused, missing, a bad URL, or
    a URL naming a database SQLAlchemy has no dialect for."""
    from sqlalchemy.exc import InterfaceError, NoSuchModuleError, OperationalError

    from storage.engine import BadDatabaseURL

    return OperationalError, InterfaceError, NoSuchModuleError, BadDatabaseURL


# Our loggers, shown at INFO (DEBUG with -v); every library's stays at WARNING (INFO with -v).
OUR_LOGGERS = ("model", "worker", "storage", "bin")


def positive_int(text: str) -> int:
    """argparse type for sizes and counts."""
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


positive_int.__name__ = "positive integer"  # argparse names the type in its error message


def probability(text: str) -> float:
    """argparse type for score thresholds."""
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise ValueError(text)
    return value


probability.__name__ = "probability (0 to 1)"


def add_device_option(p: argparse.ArgumentParser, default: str = "auto") -> None:
    """--device, the same for every command that loads a model."""
    p.add_argument("--device", choices=DEVICE_CHOICES, default=default)


def add_precision_option(p: argparse.ArgumentParser, default: str = "auto") -> None:
    """--precision, the same for every command that tags."""
    p.add_argument("--precision", choices=PRECISION_CHOICES, default=default,
                   help="arithmetic to tag in (default auto: bf16 with AMX, int8 with AVX512-BF16 and VNNI, else fp32)")


def add_verbose_option(p: argparse.ArgumentParser) -> None:
    """-v, the same for every command that logs: libraries' INFO lines too, and our DEBUG."""
    p.add_argument("-v", "--verbose", action="store_true", help="log more, libraries (alembic, celery...) included")


def regression_thresholds() -> Thresholds:
    """What bin/train and bin/evaluate --record flag as a regression (NERQ_REGRESSION_*)."""
    from ..settings import Settings  # pydantic loads only for the commands that read settings

    return Thresholds.from_settings(Settings.from_env())


@contextlib.contextmanager
def open_output(path: str | None) -> Iterator[TextIO]:
    """stdout, or a file that appears only once complete: a bad line later in the input
    leaves no partial output behind."""
    if not path:
        yield sys.stdout
        return
    final = Path(path)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            yield f
        tmp.replace(final)
    finally:
        tmp.unlink(missing_ok=True)


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for name in OUR_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.INFO)


def _message(exc: BaseException) -> str | None:
    """The one line a known error is reported as; None for a bug (it keeps its traceback)."""
    if isinstance(exc, database_errors()):
        from storage.engine import database_url

        text = database_problem(exc, database_url())
    elif isinstance(exc, user_errors()):
        text = str(exc)
    else:
        return None
    return " ".join(text.split("\n"))


def run(main: Callable[[list[str] | None], int], prog: str, argv: list[str] | None = None) -> int:
    """Run a command's main, printing user errors as `prog: error: message`."""
    try:
        return main(argv)
    except BrokenPipeError:  # e.g. `bin/results 1 | head`: the reader left, nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        message = _message(exc)
        if message is None:
            raise
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 2
