"""Settings: every NERQ_* variable as README's Configuration table documents it, and a bad
value refused with its name and what it accepts (the commands print that line: test_cli_errors)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from worker.errors import ConfigError
from worker.settings import ENV_PREFIX, Settings

README = Path(__file__).resolve().parent.parent.parent / "README.md"
ROW = re.compile(r"^\| `NERQ_(\w+)` \| (.+?) \|", re.MULTILINE)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in [n for n in os.environ if n.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(name)
    return monkeypatch


def documented_defaults() -> dict[str, str]:
    """{field: the default README's table gives} for the rows that give a value, not a sentence."""
    found = {}
    for name, cell in ROW.findall(README.read_text(encoding="utf-8")):
        value = re.match(r"`([^`]+)`|([\d.]+)", cell)
        if value and name.lower() in Settings.model_fields:
            found[name.lower()] = value.group(1) or value.group(2)
    return found


def test_readme_table_gives_the_defaults_of_settings():
    documented = documented_defaults()
    assert {"chunk_size", "device", "stale_chunk_seconds", "sweep_queue", "eval_schedule"} <= set(documented)
    defaults = Settings.from_env()
    for name, value in documented.items():
        actual = getattr(defaults, name)
        assert (float(value) == actual) if isinstance(actual, (int, float)) else value == actual, name


def test_values_are_read_and_empty_means_unset(clean_env: pytest.MonkeyPatch):
    assert not Settings.from_env().model_set
    clean_env.setenv("NERQ_MODEL", "")
    clean_env.setenv("NERQ_CHUNK_SIZE", "")
    clean_env.setenv("NERQ_EVAL_SETS", " a.bio, ,b.bio ")
    clean_env.setenv("NERQ_METRICS_PORT", "9100")
    settings = Settings.from_env()
    assert (settings.model, settings.model_set, settings.chunk_size) == ("var/models/current", False, 2000)
    assert (settings.eval_sets, settings.metrics_port) == (("a.bio", "b.bio"), 9100)
    clean_env.setenv("NERQ_MODEL", "var/models/current")  # given, even as the default: it wins over a promotion
    assert Settings.from_env().model_set


@pytest.mark.parametrize(("name", "value", "accepts"), [
    ("NERQ_TASK_TIME_LIMIT", "1.5", "valid integer"),
    ("NERQ_MAX_RETRIES", "-1", "greater than or equal to 0"),
    ("NERQ_REGRESSION_F1", "a lot", "valid number"),
    ("NERQ_SWEEP_INTERVAL_SECONDS", "0", "greater than 0"),
    ("NERQ_METRICS_PORT", "70000", "less than or equal to 65535"),
])
def test_a_bad_value_names_the_variable_and_what_it_accepts(clean_env: pytest.MonkeyPatch, name: str,
                                                           value: str, accepts: str):
    clean_env.setenv(name, value)
    with pytest.raises(ConfigError) as raised:
        Settings.from_env()
    assert str(raised.value).startswith(f"{name}={value!r}: ") and accepts in str(raised.value)
    assert "\n" not in str(raised.value)
