"""What every command shares: options, logging set-up and turning known errors into one clear line."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable

from model.checkpoint import ModelLoadError
from model.corpus import CorpusFormatError
from model.data import CorpusNotFound
from model.devices import DEVICE_CHOICES, DeviceUnavailable
from storage import NotFound

from ..errors import BrokerUnavailable
from ..regression import Thresholds
from ..settings import Settings

# Errors a user can fix from the message alone: no traceback, exit status 2.
USER_ERRORS: tuple[type[BaseException], ...] = (
    CorpusFormatError,
    CorpusNotFound,
    ModelLoadError,
    DeviceUnavailable,
    BrokerUnavailable,
    NotFound,
    FileNotFoundError,
    PermissionError,
    IsADirectoryError,
)


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


def regression_thresholds() -> Thresholds:
    """What bin/train and bin/evaluate --record flag as a regression (NERQ_REGRESSION_*)."""
    return Thresholds.from_settings(Settings.from_env())


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def run(main: Callable[[list[str] | None], int], prog: str, argv: list[str] | None = None) -> int:
    """Run a command's main, printing user errors as `prog: error: message`."""
    try:
        return main(argv)
    except USER_ERRORS as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `bin/results 1 | head`: the reader left, nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
