"""docker-compose.yml, .env.example and the Dockerfile, checked against the code they start:
the commands and options exist, the variables are read by the code, the services wait for
what they need, and compose itself accepts the file. Nothing is built; the one thing started is
the redis service's start script, with the local redis-server standing in for the image's."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from tests.support.polling import wait_until
from tests.support.procs import BIN, REPO, free_port, run_bin

COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
CODE_DIRS = ("worker", "model", "storage", "bin")  # where a NERQ_* variable must be read

BACKING = ("redis", "postgres")
APP_SERVICES = ("migrate", "worker", "worker-cpu", "beat", "flower")
AFTER_MIGRATION = ("worker", "worker-cpu", "beat")  # must not start on an old schema
SECRETS = ("REDIS_PASSWORD", "POSTGRES_PASSWORD", "FLOWER_PASSWORD")
MODELS_MOUNT = "/app/var/models"  # model_versions store absolute paths: the same in every container
IGNORED_IN_CONTEXT = (".venv", "var", "data", ".git", "__pycache__", ".pytest_cache", ".hypothesis",
                      "bench/results")

# ${NAME}, ${NAME:-default}, ${NAME:?message}; not $${...}, which compose leaves to the container.
VAR_REF = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)([^}]*)\}")
NERQ_NAME = re.compile(r"\bNERQ_[A-Z0-9_]+\b")


# --- the files, parsed -------------------------------------------------------------------

@cache
def compose_text() -> str:
    return COMPOSE_FILE.read_text(encoding="utf-8")


@cache
def compose() -> dict[str, Any]:
    return yaml.safe_load(compose_text())


def service(name: str) -> dict[str, Any]:
    return compose()["services"][name]


def command_words(name: str) -> list[str]:
    """A service's command as argv (compose accepts a list or a shell-like string)."""
    command = service(name).get("command") or []
    return shlex.split(command) if isinstance(command, str) else [str(word) for word in command]


def option_value(words: list[str], *names: str) -> str | None:
    """The value of `--name VALUE` or `--name=VALUE` in argv."""
    for i, word in enumerate(words):
        for name in names:
            if word == name and i + 1 < len(words):
                return words[i + 1]
            if word.startswith(name + "="):
                return word.split("=", 1)[1]
    return None


def depends_on(name: str) -> dict[str, dict[str, Any]]:
    """depends_on in its long form (the short list form has no conditions: all empty)."""
    deps = service(name).get("depends_on") or {}
    return {dep: {} for dep in deps} if isinstance(deps, list) else deps


def environment(name: str) -> dict[str, str]:
    env = service(name).get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: str(value) for key, value in env.items()}


def volume_targets(name: str) -> dict[str, str]:
    """Container path -> source of each of a service's volumes (short syntax)."""
    targets = {}
    for volume in service(name).get("volumes") or []:
        source, target = str(volume).split(":")[:2]
        targets[target] = source
    return targets


def compose_variables() -> dict[str, list[str]]:
    """Each variable the compose file interpolates -> the modifiers it is used with."""
    found: dict[str, list[str]] = {}
    for name, modifier in VAR_REF.findall(compose_text()):
        found.setdefault(name, []).append(modifier)
    return found


@cache
def env_example() -> dict[str, str]:
    """NAME=value lines of .env.example (comments and blank lines skipped)."""
    values = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f".env.example: not NAME=value: {line!r}"
            values[name.strip()] = value.strip()
    return values


@cache
def code_text() -> str:
    """All the code a variable could be read by: Python modules and the bin/ scripts."""
    files = [p for d in CODE_DIRS for p in (REPO / d).rglob("*")
             if p.is_file() and "__pycache__" not in p.parts and p.suffix in ("", ".py", ".sh")]
    return "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in files)


@cache
def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(
        line for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()
        if not line.lstrip().startswith("#")))
    pairs = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, args = line.strip().partition(" ")
            pairs.append((keyword.upper(), args.strip()))
    return pairs


def module_file(module: str) -> Path | None:
    """The repository file a dotted module path (optionally `module:attr`) names, if any."""
    base = REPO.joinpath(*module.split(":")[0].split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


# --- services and their dependencies -------------------------------------------------------

def test_required_services_exist() -> None:
    missing = set(BACKING + APP_SERVICES) - set(compose()["services"])
    assert not missing, f"docker-compose.yml lacks services {sorted(missing)}"
    assert "version" not in compose(), "the compose spec has no top-level version: key"


def redis_script() -> str:
    """The shell script the redis service runs (`sh -c SCRIPT`), as the container's shell gets it."""
    words = command_words("redis")
    assert words[:2] == ["sh", "-c"] and len(words) == 3, words
    return words[2].replace("$$", "$")  # compose's escape: `$$` reaches the container as `$`


def redis_server_words() -> list[str]:
    """redis-server's argv, from the script line that starts it."""
    line = next(line for line in redis_script().splitlines() if "redis-server" in line)
    words = shlex.split(line.split("<<")[0])
    return words[words.index("redis-server") + 1:]


def test_redis_keeps_an_append_only_file_and_requires_a_password() -> None:
    words = redis_server_words()
    assert option_value(words, "--appendonly") == "yes", words
    assert words[-1] == "-", f"redis-server must read its password from stdin (`-` last): {words}"
    assert re.search(r"^requirepass \$\{?REDIS_PASSWORD\}?$", redis_script(), re.M), redis_script()
    assert environment("redis").get("REDIS_PASSWORD", "").startswith("${REDIS_PASSWORD:?")


def test_redis_never_evicts() -> None:
    """An evicting Redis under memory pressure deletes keys: queued messages among them."""
    assert option_value(redis_server_words(), "--maxmemory-policy") == "noeviction", redis_server_words()


STAND_IN_ENTRYPOINT = """#!/bin/sh
# Stands for the redis image's docker-entrypoint.sh (which execs its arguments), on a private port.
program=$1; shift
exec "$program" --port "$TEST_PORT" --bind 127.0.0.1 --dir "$TEST_DIR" "$@"
"""


def test_redis_script_starts_a_server_that_requires_the_password(tmp_path: Path) -> None:
    """The script run for real: the password arrives, and never on a command line."""
    (tmp_path / "docker-entrypoint.sh").write_text(STAND_IN_ENTRYPOINT, encoding="utf-8")
    (tmp_path / "docker-entrypoint.sh").chmod(0o755)
    password, port = "s3cret-" + os.urandom(6).hex(), free_port()
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "REDIS_PASSWORD": password,
           "TEST_PORT": str(port), "TEST_DIR": str(tmp_path)}
    proc = subprocess.Popen(["sh", "-c", redis_script()], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        client = redis.Redis(port=port, password=password, socket_connect_timeout=1)
        wait_until(client.ping, f"the redis service's script to serve on {port}", timeout=60, poll=0.1)
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port).ping()
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        argv = Path(f"/proc/{proc.pid}/cmdline").read_bytes()  # sh, exec'd into redis-server
        assert password.encode() not in argv, argv
    finally:
        proc.kill()
        proc.wait(30)


@pytest.mark.parametrize("name, probe", [("redis", "ping"), ("postgres", "pg_isready")])
def test_backing_services_have_healthchecks(name: str, probe: str) -> None:
    test = service(name).get("healthcheck", {}).get("test")
    assert test and probe in " ".join(test if isinstance(test, list) else [test]), test


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_wait_for_healthy_backing_services(name: str) -> None:
    deps = depends_on(name)
    for backing in BACKING:
        assert deps.get(backing, {}).get("condition") == "service_healthy", (name, deps)
    if name in AFTER_MIGRATION:
        assert deps.get("migrate", {}).get("condition") == "service_completed_successfully", (name, deps)


def test_gpu_worker_reserves_an_nvidia_gpu() -> None:
    devices = service("worker").get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices")
    assert devices and any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) for d in devices)
    assert option_value(command_words("worker"), "--device") == "cuda"


def test_cpu_worker_is_in_the_cpu_profile() -> None:
    assert "cpu" in service("worker-cpu").get("profiles", [])
    assert option_value(command_words("worker-cpu"), "--device") == "cpu"


def test_flower_reads_basic_auth_from_its_environment() -> None:
    assert not option_value(command_words("flower"), "--basic-auth"), "basic auth on the command line"
    auth = environment("flower").get("FLOWER_BASIC_AUTH", "")
    assert auth.startswith("${FLOWER_USER:?") and ":${FLOWER_PASSWORD:?" in auth, auth


def test_only_flower_publishes_ports() -> None:
    publishing = sorted(name for name, spec in compose()["services"].items() if spec.get("ports"))
    assert publishing == ["flower"]


def test_a_single_beat() -> None:
    replicas = service("beat").get("deploy", {}).get("replicas", 1)
    assert int(replicas) <= 1, "two beats would send every scheduled task twice"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_share_broker_database_and_models(name: str) -> None:
    env = environment(name)
    assert "@${REDIS_HOST:-redis}:" in env.get("NERQ_BROKER_URL", ""), env
    assert env.get("NERQ_DATABASE_URL", "").startswith("postgresql+psycopg://"), env
    assert volume_targets(name).get(MODELS_MOUNT) == "models", f"{name} must mount models at {MODELS_MOUNT}"


def test_cpu_workers_never_run_more_busy_threads_than_processes() -> None:
    env = environment("worker-cpu")
    assert env.get("NERQ_TORCH_THREADS") == "${NERQ_TORCH_THREADS:-1}", env
    assert env.get("OMP_WAIT_POLICY") == "PASSIVE", env


def test_beat_keeps_its_schedule_on_a_volume() -> None:
    schedule = option_value(command_words("beat"), "--schedule-file")
    assert schedule, "bin/beat's default schedule file would be lost with its container"
    assert str(Path(schedule).parent) in volume_targets("beat"), schedule


# --- the commands the services run ---------------------------------------------------------

def bin_services() -> list[str]:
    return [name for name in APP_SERVICES if command_words(name)[0].startswith("bin/")]


@pytest.mark.parametrize("name", bin_services())
def test_bin_commands_exist_and_accept_their_options(name: str) -> None:
    words = command_words(name)
    script = REPO / words[0]
    assert script.is_file() and os.access(script, os.X_OK), f"{words[0]} is not an executable in bin/"
    assert script.parent == BIN
    result = run_bin(script.name, "--help", timeout=120)
    assert result.returncode == 0, result.stderr
    options = [word.split("=", 1)[0] for word in words[1:] if word.startswith("--")]
    unknown = [option for option in options if option not in result.stdout]
    assert not unknown, f"{words[0]} --help does not mention {unknown}"


@pytest.mark.parametrize("name", [n for n in APP_SERVICES if n not in bin_services()])
def test_other_commands_name_modules_of_the_repository(name: str) -> None:
    words = command_words(name)
    if words[0] == "celery":
        module = option_value(words, "--app", "-A")
    elif words[:2] in (["python", "-m"], ["python3", "-m"]):
        module = words[2]
    else:
        pytest.fail(f"{name}: command {words} is neither bin/..., celery --app X nor python -m X")
    assert module and module_file(module), f"{name}: module {module!r} is not a file of the repository"


# --- variables -----------------------------------------------------------------------------

def test_nerq_variables_are_read_by_the_code() -> None:
    names = set(NERQ_NAME.findall(compose_text())) | {n for n in env_example() if n.startswith("NERQ_")}
    names |= set(NERQ_NAME.findall(DOCKERFILE.read_text(encoding="utf-8")))
    unread = sorted(name for name in names if not re.search(rf"\b{name}\b", code_text()))
    assert not unread, f"set for the containers but read nowhere in {', '.join(CODE_DIRS)}: {unread}"


def test_every_compose_variable_is_in_env_example() -> None:
    missing = sorted(set(compose_variables()) - set(env_example()))
    assert not missing, f".env.example lacks {missing}"


def test_env_example_ships_no_secret() -> None:
    """A password in the example would work as soon as it is copied: ship none."""
    shipped = {secret: env_example().get(secret) for secret in SECRETS if env_example().get(secret) != ""}
    assert not shipped, f".env.example must list the secrets with empty values: {shipped}"


def argv_words(spec: dict[str, Any]) -> list[str]:
    """Every word a service puts on a command line: command, entrypoint, healthcheck test."""
    words = []
    for value in (spec.get("command"), spec.get("entrypoint"), (spec.get("healthcheck") or {}).get("test")):
        words += [value] if isinstance(value, str) else [str(word) for word in value or []]
    return words


@pytest.mark.parametrize("name", BACKING + APP_SERVICES)
def test_no_secret_is_interpolated_into_a_command_line(name: str) -> None:
    """Command lines are visible to every user of the host (ps, /proc, docker inspect)."""
    leaked = [word for word in argv_words(service(name))
              for secret in SECRETS if re.search(rf"(?<!\$)\$\{{{secret}\b", word)]
    assert not leaked, f"{name} puts a secret on a command line: {leaked}"


@pytest.mark.parametrize("secret", SECRETS)
def test_secrets_are_required_and_have_no_default(secret: str) -> None:
    modifiers = compose_variables().get(secret)
    assert modifiers, f"docker-compose.yml does not use {secret}"
    assert all(m.startswith(":?") for m in modifiers), f"{secret} must be ${{{secret}:?...}} everywhere"


# --- compose itself ------------------------------------------------------------------------

@cache
def compose_command() -> tuple[str, ...]:
    """`docker compose`, else the standalone docker-compose (Debian's 1.29)."""
    for command in (("docker", "compose"), ("docker-compose",)):
        try:
            if subprocess.run([*command, "version"], capture_output=True, timeout=60).returncode == 0:
                return command
        except OSError:
            continue
    pytest.fail("neither `docker compose` nor `docker-compose` works: install one "
                "(apt-get install -y docker-compose; .ci/run does it)")


def run_compose_config(tmp_path: Path, values: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """`compose config` on docker-compose.yml with `values` as its only env file, and none of the
    file's variables inherited from this process (a developer's shell must not mask a gap)."""
    env_file = tmp_path / "test.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in compose_variables()}
    return subprocess.run(
        [*compose_command(), "--env-file", str(env_file), "-f", str(COMPOSE_FILE), *args, "config"],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=120,
    )


def dummy_values() -> dict[str, str]:
    return {name: value or "x" for name, value in env_example().items()} | {s: "dummy-" + s.lower() for s in SECRETS}


@pytest.mark.parametrize("profile", [(), ("--profile", "cpu")], ids=["default", "cpu"])
def test_compose_accepts_the_file(tmp_path: Path, profile: tuple[str, ...]) -> None:
    result = run_compose_config(tmp_path, dummy_values(), *profile)
    assert result.returncode == 0, result.stderr
    services = set(yaml.safe_load(result.stdout)["services"])
    expected = set(BACKING + APP_SERVICES) - ({"worker-cpu"} if not profile else set())
    assert expected <= services, sorted(services)


def test_no_secret_value_reaches_a_command_line(tmp_path: Path) -> None:
    result = run_compose_config(tmp_path, dummy_values(), "--profile", "cpu")
    assert result.returncode == 0, result.stderr
    values = [dummy_values()[secret] for secret in SECRETS]
    leaked = {name: word for name, spec in yaml.safe_load(result.stdout)["services"].items()
              for word in argv_words(spec) if any(value in word for value in values)}
    assert not leaked, f"secrets on command lines: {leaked}"


def published_addresses(tmp_path: Path, values: dict[str, str]) -> list[str]:
    """Host addresses of Flower's published ports in compose's rendering of the file."""
    result = run_compose_config(tmp_path, values)
    assert result.returncode == 0, result.stderr
    ports = yaml.safe_load(result.stdout)["services"]["flower"]["ports"]
    return [str(p["host_ip"]) if isinstance(p, dict) else str(p).rsplit(":", 2)[0] for p in ports]


def test_flower_is_published_on_localhost_by_default(tmp_path: Path) -> None:
    assert published_addresses(tmp_path, dummy_values()) == ["127.0.0.1"], "with .env.example's values"
    unset = {k: v for k, v in dummy_values().items() if not k.startswith("FLOWER_BIND")}
    assert published_addresses(tmp_path, unset) == ["127.0.0.1"], "with the compose file's default"


def test_images_default_to_the_official_ones(tmp_path: Path) -> None:
    """REDIS_IMAGE, POSTGRES_IMAGE and BASE_IMAGE unset: what users get is the official images."""
    unset = {k: v for k, v in dummy_values().items() if not k.endswith("_IMAGE")}
    result = run_compose_config(tmp_path, unset)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert services["redis"]["image"] == "redis:7" and services["postgres"]["image"] == "postgres:16"
    assert services["migrate"]["build"]["args"]["BASE_IMAGE"] == "python:3.11-slim"


def test_the_production_file_keeps_its_own_network() -> None:
    """Host networking is the check's override alone (deploy/compose.host.yml)."""
    assert not [name for name, spec in compose()["services"].items() if "network_mode" in spec]


def test_the_checks_override_puts_every_service_on_the_host_network(tmp_path: Path) -> None:
    values = dummy_values() | {"REDIS_PORT": "16379", "POSTGRES_PORT": "15432", "FLOWER_PORT": "15555"}
    result = run_compose_config(tmp_path, values, "-f", str(REPO / "deploy" / "compose.host.yml"),
                                "--profile", "cpu")
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert {name: spec.get("network_mode") for name, spec in services.items()} == dict.fromkeys(services, "host")


def test_compose_refuses_env_example_as_shipped(tmp_path: Path) -> None:
    result = run_compose_config(tmp_path, env_example())
    assert result.returncode != 0, "compose config accepted .env.example's empty secrets"
    assert any(secret in result.stdout + result.stderr for secret in SECRETS), result.stderr


@pytest.mark.parametrize("secret", SECRETS)
def test_compose_refuses_to_run_without_a_secret(tmp_path: Path, secret: str) -> None:
    values = dummy_values()
    del values[secret]
    result = run_compose_config(tmp_path, values)
    assert result.returncode != 0, f"compose config passed without {secret}"
    assert secret in result.stdout + result.stderr


# --- the image -----------------------------------------------------------------------------

def test_dockerfile_installs_torch_variant_before_the_project() -> None:
    instructions = dockerfile_instructions()
    # The base is a build argument (a local stand-in on an air-gapped host), the official image by default.
    assert ("ARG", "BASE_IMAGE=python:3.11-slim") in instructions, "no ARG BASE_IMAGE=python:3.11-slim"
    assert [a for k, a in instructions if k == "FROM"] == ["${BASE_IMAGE}"]
    assert any(k == "ARG" and a.startswith("TORCH_VARIANT") for k, a in instructions), "no ARG TORCH_VARIANT"
    runs = [a for k, a in instructions if k == "RUN"]
    torch = [i for i, a in enumerate(runs) if "pip install" in a and "torch==" in a
             and re.search(r"\$\{?TORCH_VARIANT\}?", a)]
    project = [i for i, a in enumerate(runs) if re.search(r"pip install\s+[\"']?\.\[monitor\]", a)]
    assert torch, "no `pip install torch==... --index-url .../${TORCH_VARIANT}`"
    assert project, "no `pip install .[monitor]`"
    assert torch[0] < project[0], "torch must be installed before the project, so its pin is met"


def test_dockerfile_runs_as_a_non_root_user() -> None:
    users = [a.split(":")[0] for k, a in dockerfile_instructions() if k == "USER"]
    assert users and users[-1] not in ("root", "0"), users


def test_dockerignore_keeps_local_state_out_of_the_image() -> None:
    entries = {line.strip().removeprefix("**/").strip("/")
               for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()}
    missing = [entry for entry in IGNORED_IN_CONTEXT if entry not in entries]
    assert not missing, f".dockerignore lacks {missing}"
