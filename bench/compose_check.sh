#!/usr/bin/env bash
# bench/compose_check.sh [--quick]: the Docker Compose stack, run for real (docs/deploy.md, "The
# compose check"). Builds local stand-in base images (debootstrap'd Debian bookworm, Redis and
# PostgreSQL from Debian's packages), builds nerqueue:cpu with `compose build`, starts the stack on
# the host's network (deploy/compose.host.yml), tags the corpus test file through it and compares
# the results with bin/tag's, then the faults: a killed worker, a Redis restart, Flower's auth.
#   --quick  CI's reduced form: redis, postgres, migrate and one worker, one small job.
# Starts a private dockerd when none answers, and tears everything it started down at the end.
# Prints one JSON summary (each stage's wall time, each check's result); exits 1 on any failure.
# Environment: NERQ_CHECK_CACHE (default /var/tmp/nerqueue-compose-check: the debootstrap root
# and the private dockerd's images, kept between runs), DEBIAN_MIRROR (default: the host's apt
# source), TORCH_WHEEL (default: /opt/wheels/torch-2.13.0+cpu-*.whl if any, else the PyTorch
# index), NERQ_PYTHON (the host's python for bin/tag; default .venv, made by `make setup`).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

MODE=full
case "${1:-}" in
  "") ;;
  --quick) MODE=quick ;;
  -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "compose_check: unknown option ${1} (use --quick or nothing)" >&2; exit 2 ;;
esac

CACHE=${NERQ_CHECK_CACHE:-/var/tmp/nerqueue-compose-check}
PROJECT=nerqueue-check
ROOT_IMAGE=nerqueue-standin/bookworm-root:latest
BASE=nerqueue-standin/base:bookworm
REDIS_STANDIN=nerqueue-standin/redis:bookworm
POSTGRES_STANDIN=nerqueue-standin/postgres:bookworm
TEST_FILE=${NERQ_CHECK_TEST_FILE:-$REPO/../shared/data/mit_movie_trivia/trivia10k13test.bio}
TRAIN_FILE=$(dirname "$TEST_FILE")/trivia10k13train.bio
WORK=$(mktemp -d /tmp/nerqueue-compose-check.XXXXXX)
chmod 755 "$WORK"  # the containers (uid 1000) read the inputs mounted from it; check.env stays 600
T_START=$(date +%s.%N)

declare -a STAGES=() CHECKS=()
FAILED=0
DOCKERD_PID=""
STACK_UP=0
WHEEL_LINK=""

log() { printf '[compose_check %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { echo "compose_check: $*" >&2; exit 1; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# stage NAME COMMAND...: run it, record its wall time.
stage() {
  local name=$1 t0
  shift
  log "stage $name"
  t0=$(now)
  "$@"
  STAGES+=("\"$name\": $(secs "$t0" "$(now)")")
}

# check NAME COMMAND...: run it, record pass or fail (a failure is reported, the run goes on).
check() {
  local name=$1
  shift
  if "$@"; then
    CHECKS+=("\"$name\": true")
    log "check $name: pass"
  else
    CHECKS+=("\"$name\": false")
    FAILED=1
    log "check $name: FAIL"
  fi
}

# wait_for WHAT TIMEOUT COMMAND...: poll COMMAND until it succeeds, fail after TIMEOUT seconds.
wait_for() {
  local what=$1 timeout=$2 deadline
  shift 2
  deadline=$(($(date +%s) + timeout))
  until "$@" >/dev/null 2>&1; do
    (($(date +%s) < deadline)) || { log "timed out after ${timeout}s waiting for $what"; return 1; }
    sleep 0.5
  done
}

summary() {
  local IFS=,
  printf '{"mode": "%s", "passed": %s, "total_s": %s, "stages_s": {%s}, "checks": {%s}}\n' \
    "$MODE" "$([[ $FAILED == 0 ]] && echo true || echo false)" "$(secs "$T_START" "$(now)")" \
    "${STAGES[*]}" "${CHECKS[*]}"
}

# --- the engine ------------------------------------------------------------------------------

docker_ok() { docker info >/dev/null 2>&1; }

start_dockerd() {
  if docker_ok; then
    log "using the running Docker engine (${DOCKER_HOST:-default socket})"
    return
  fi
  command -v dockerd >/dev/null || die "no dockerd: apt-get install -y docker.io"
  mkdir -p "$CACHE/docker" "$CACHE/run"
  local sock=$CACHE/run/docker.sock
  # No bridge and no iptables rules: every container runs on the host's network.
  dockerd --bridge=none --iptables=false --ip6tables=false \
    --data-root "$CACHE/docker" --exec-root "$CACHE/run/exec" \
    --pidfile "$CACHE/run/dockerd.pid" -H "unix://$sock" >"$WORK/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  export DOCKER_HOST=unix://$sock
  wait_for "the private dockerd" 60 docker_ok || { tail -5 "$WORK/dockerd.log" >&2; die "dockerd did not start"; }
  log "private dockerd $DOCKERD_PID on $sock"
}

stop_dockerd() {
  [[ -n $DOCKERD_PID ]] || return 0
  kill "$DOCKERD_PID" 2>/dev/null || true
  local deadline=$(($(date +%s) + 60))
  while kill -0 "$DOCKERD_PID" 2>/dev/null && (($(date +%s) < deadline)); do sleep 0.5; done
  kill -0 "$DOCKERD_PID" 2>/dev/null && kill -9 "$DOCKERD_PID" 2>/dev/null
  wait "$DOCKERD_PID" 2>/dev/null || true
  # Whatever dockerd left mounted under its roots (overlays, netns, shm).
  grep -o " $CACHE/[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  DOCKERD_PID=""
}

COMPOSE=()
find_compose() {
  if docker compose version >/dev/null 2>&1; then COMPOSE=(docker compose)
  elif command -v docker-compose >/dev/null; then COMPOSE=(docker-compose)
  else die "no Docker Compose: apt-get install -y docker-compose"
  fi
}

compose() {
  "${COMPOSE[@]}" --project-name "$PROJECT" --env-file "$WORK/check.env" \
    -f docker-compose.yml -f deploy/compose.host.yml --profile cpu "$@"
}

teardown() {
  local rc=$?
  set +e
  if [[ $STACK_UP == 1 ]]; then
    log "teardown: the stack"
    compose logs --no-color >"$WORK/stack.log" 2>&1
    docker logs "$PROJECT-flower" >"$WORK/flower.log" 2>&1 && docker rm -f "$PROJECT-flower" >/dev/null 2>&1
    compose down --volumes --remove-orphans --timeout 10 >/dev/null 2>&1
  fi
  [[ -n $WHEEL_LINK ]] && rm -f "$WHEEL_LINK"
  stop_dockerd
  ((rc == 0)) || FAILED=1
  summary
  if [[ $FAILED == 0 ]]; then rm -rf "$WORK"; else log "kept $WORK (logs)"; fi
  exit $((FAILED || rc))
}

# --- stand-in images ---------------------------------------------------------------------------

debian_mirror() {
  [[ -n ${DEBIAN_MIRROR:-} ]] && { echo "$DEBIAN_MIRROR"; return; }
  local m
  m=$(grep -hs -E '^URIs:.*/debian/?$' /etc/apt/sources.list.d/*.sources | awk '{print $2; exit}')
  [[ -n $m ]] || m=$(grep -hs -E '^deb .*/debian/? ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2; exit}')
  echo "${m:-http://deb.debian.org/debian}"
}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

build_root() {
  image_exists "$ROOT_IMAGE" && return
  local root=$CACHE/rootfs/bookworm
  if [[ ! -f $root/.complete ]]; then
    command -v debootstrap >/dev/null || die "no debootstrap: apt-get install -y debootstrap"
    rm -rf "$root" && mkdir -p "$root"
    log "debootstrap bookworm from $(debian_mirror)"
    nice -n 19 debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
      bookworm "$root" "$(debian_mirror)" >"$WORK/debootstrap.log" 2>&1 \
      || { tail -5 "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    touch "$root/.complete"
  fi
  # The host's extra certificate authorities (e.g. an egress proxy's): the builds reach PyPI as it does.
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
    chroot "$root" update-ca-certificates >/dev/null 2>&1 || die "update-ca-certificates failed in the root"
  fi
  tar -C "$root" --exclude=./.complete -c . | docker import - "$ROOT_IMAGE" >/dev/null
}

standin_build() {  # standin_build NAME TAG ARG=VALUE: one image of deploy/standin
  docker build -q --network host -f "deploy/standin/$1.Dockerfile" --build-arg "$3" -t "$2" deploy/standin \
    >>"$WORK/standin.log" 2>&1 || { tail -20 "$WORK/standin.log" >&2; die "building the $1 stand-in failed"; }
}

build_standins() {
  build_root
  standin_build base "$BASE" ROOT_IMAGE="$ROOT_IMAGE"
  standin_build redis "$REDIS_STANDIN" BASE_IMAGE="$BASE"
  standin_build postgres "$POSTGRES_STANDIN" BASE_IMAGE="$BASE"
}

# --- the stack ---------------------------------------------------------------------------------

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

write_env() {
  local hex="import secrets; print(secrets.token_hex(24))"
  FLOWER_USER=check
  FLOWER_PORT=$(free_port)
  umask 077
  cat >"$WORK/check.env" <<EOF
REDIS_PASSWORD=$(python3 -c "$hex")
POSTGRES_PASSWORD=$(python3 -c "$hex")
FLOWER_USER=$FLOWER_USER
FLOWER_PASSWORD=$(python3 -c "$hex")
REDIS_HOST=127.0.0.1
REDIS_PORT=$(free_port)
POSTGRES_HOST=127.0.0.1
POSTGRES_PORT=$(free_port)
FLOWER_BIND_ADDRESS=127.0.0.1
FLOWER_PORT=$FLOWER_PORT
BASE_IMAGE=$BASE
REDIS_IMAGE=$REDIS_STANDIN
POSTGRES_IMAGE=$POSTGRES_STANDIN
NERQ_CHUNK_SIZE=20
NERQ_STALE_CHUNK_SECONDS=15
NERQ_SWEEP_INTERVAL_SECONDS=3
WORKER_STOP_GRACE_PERIOD=10s
EOF
  umask 022
}

env_value() { sed -n "s/^$1=//p" "$WORK/check.env"; }

link_wheel() {
  local wheel=${TORCH_WHEEL:-}
  [[ -z $wheel ]] && wheel=$(compgen -G "/opt/wheels/torch-2.13.0+cpu-*.whl" | head -1 || true)
  [[ -z $wheel ]] && { log "no local torch wheel: the build downloads torch from the PyTorch index"; return; }
  [[ -f $wheel ]] || die "TORCH_WHEEL=$wheel is not a file"
  WHEEL_LINK=deploy/wheels/$(basename "$wheel")
  [[ -e $WHEEL_LINK ]] && { WHEEL_LINK=""; return; }  # the user's own: leave it there
  ln "$wheel" "$WHEEL_LINK" 2>/dev/null || cp "$wheel" "$WHEEL_LINK"
}

build_app() {
  link_wheel
  compose build migrate >"$WORK/build.log" 2>&1 || { tail -20 "$WORK/build.log" >&2; die "compose build failed (log: $WORK/build.log)"; }
}

health() { [[ $(docker inspect -f '{{.State.Health.Status}}' "$(compose ps -q "$1")") == healthy ]]; }

workers_ready() {
  local want=$1 ids id ready=0
  ids=$(compose ps -q worker-cpu)
  for id in $ids; do docker logs "$id" 2>&1 | grep -q ' ready\.' && ready=$((ready + 1)); done
  ((ready >= want))
}

start_stack() {
  local services=(redis postgres migrate worker-cpu) workers=1
  [[ $MODE == full ]] && { services+=(beat); workers=2; }
  STACK_UP=1
  compose up -d --scale worker-cpu=$workers "${services[@]}" >"$WORK/up.log" 2>&1 \
    || { tail -20 "$WORK/up.log" >&2; die "compose up failed (log: $WORK/up.log)"; }
  if [[ $MODE == full ]]; then
    # Flower through `run`, which publishes no port: docker-compose 1.29 refuses a published port
    # on the host network and an override cannot drop one (compose v2 has `ports: !reset []`).
    compose run -d --no-deps --name "$PROJECT-flower" flower >>"$WORK/up.log" 2>&1 \
      || { tail -20 "$WORK/up.log" >&2; die "starting flower failed (log: $WORK/up.log)"; }
  fi
  wait_for "redis healthy" 120 health redis
  wait_for "postgres healthy" 120 health postgres
  wait_for "$workers worker(s) ready" 180 workers_ready $workers || die "workers not ready"
}

# --- a model, the reference output, jobs -------------------------------------------------------

host_python() {
  if [[ -n ${NERQ_PYTHON:-} ]]; then echo "$NERQ_PYTHON"
  else [[ -x .venv/bin/python ]] || nice -n 19 make setup >&2; echo "$REPO/.venv/bin/python"
  fi
}

make_model() {
  [[ -f $TEST_FILE && -f $TRAIN_FILE ]] || die "no corpus at $(dirname "$TEST_FILE") (set NERQ_CHECK_TEST_FILE)"
  PY=$(host_python)
  export NERQ_PYTHON=$PY
  mkdir -p "$WORK/data"
  # The tests' tiny model (tests/conftest.py): 1,500 training sentences, seconds to train.
  "$PY" - "$TRAIN_FILE" "$WORK/data" <<'EOF'
import sys
from pathlib import Path
src, out = Path(sys.argv[1]), Path(sys.argv[2])
blocks = src.read_text(encoding="utf-8").split("\n\n")[:1500]
(out / src.name).write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
EOF
  cp "$TEST_FILE" "$WORK/data/"
  NERQ_DATABASE_URL=sqlite:///$WORK/host.db nice -n 19 "$PY" - "$WORK/data" "$WORK/tiny" >"$WORK/train.log" 2>&1 <<'EOF' \
    || { tail -5 "$WORK/train.log" >&2; die "training the tiny model failed"; }
import sys
from model.train import train
from model.train_config import preset_config
train(preset_config("default", data_dir=sys.argv[1], out=sys.argv[2], epochs=2, patience=2,
                    word_dim=50, char_dim=16, char_filters=32, hidden=64, threads=2))
EOF
  chmod -R a+rX "$WORK/tiny"
  one_off -v "$WORK/tiny:/in:ro" \
    sh -c 'rm -rf /app/var/models/tiny && cp -r /in /app/var/models/tiny' >/dev/null
}

reference() {  # reference IN OUT: bin/tag outside the stack
  NERQ_DATABASE_URL=sqlite:///$WORK/host.db nice -n 19 bin/tag --model "$WORK/tiny" --format bio "$1" -o "$2"
}

# one_off [-v ...] COMMAND...: a one-off container of the app image, as the docs' `compose run --rm
# worker-cpu ...`, but of the migrate service: docker-compose 1.29 links a one-off container to its
# service's running containers, which the host network refuses (migrate has none running).
one_off() {
  local mount=()
  if [[ ${1:-} == -v ]]; then mount=(-v "$2"); shift 2; fi
  compose run --rm --no-deps -T "${mount[@]}" migrate "$@"
}

sql() { compose exec -T postgres psql -U nerqueue -d nerqueue -tAq -v ON_ERROR_STOP=1 -c "$1"; }

submit() {  # submit FILE: a job through the stack; prints its id
  local dir name
  dir=$(cd "$(dirname "$1")" && pwd) name=$(basename "$1")
  one_off -v "$dir:/in:ro" \
    bin/submit "/in/$name" --format bio --model /app/var/models/tiny | tail -1
}

job_state() { sql "select status || ' ' || n_done || ' ' || n_failed || ' ' || n_sentences from jobs where id = $1"; }
job_ended() { [[ $(job_state "$1" | cut -d' ' -f1) =~ ^(done|failed|cancelled)$ ]]; }
job_started() { local s; s=$(job_state "$1"); [[ $(cut -d' ' -f2 <<<"$s") -gt 0 ]]; }

# job_exact ID N EXPECTED: done, every sentence tagged once, counters exact, results == bin/tag's.
job_exact() {
  local id=$1 n=$2 expected=$3 state tagged
  state=$(job_state "$id")
  tagged=$(sql "select count(*) from sentences where job_id = $id and tags is not null")
  [[ $state == "done $n 0 $n" && $tagged == "$n" ]] || { log "job $id: '$state', $tagged tagged (want done $n 0 $n, $n)"; return 1; }
  one_off bin/results "$id" >"$WORK/job$id.conll" || return 1
  cmp -s "$expected" "$WORK/job$id.conll" || { log "job $id: bin/results differs from bin/tag ($WORK/job$id.conll)"; return 1; }
  if [[ -n ${ENTITIES:-} ]]; then
    local e; e=$(sql "select count(*) from entities where job_id = $id")
    [[ $e == "$ENTITIES" ]] || { log "job $id: $e entity rows, want $ENTITIES"; return 1; }
  fi
}

run_job() {  # run_job FILE N EXPECTED: submit, wait, check exactness
  local id
  id=$(submit "$1") || return 1
  wait_for "job $id" 600 job_ended "$id" || return 1
  job_exact "$id" "$2" "$3" || return 1
  ENTITIES=$(sql "select count(*) from entities where job_id = $id")
}

# fault_job NAME FAULT...: a job with FAULT run once its first chunk is done, then exactness.
fault_job() {
  local name=$1 id
  shift
  id=$(submit "$TEST_FILE") || return 1
  wait_for "job $id to start" 300 job_started "$id" || return 1
  job_ended "$id" && { log "$name: job $id ended before the fault"; return 1; }
  log "$name: job $id at $(job_state "$id"): fault"
  "$@" || { log "$name: the fault failed"; return 1; }
  job_ended "$id" && { log "$name: job $id ended before the fault took effect"; return 1; }
  wait_for "job $id after $name" 600 job_ended "$id" || return 1
  log "$name: job $id ended; $(sql "select count(*) from chunks where job_id = $id and attempts > 1") chunk(s) ran more than once"
  job_exact "$id" "$N" "$WORK/expected.conll"
}

kill_a_worker() { docker kill "$(compose ps -q worker-cpu | head -1)" >/dev/null; }
restart_redis() { compose restart redis >/dev/null 2>&1 && wait_for "redis healthy again" 120 health redis; }

flower_code() {  # flower_code [auth]: the HTTP status of Flower's front page
  local url="http://127.0.0.1:$FLOWER_PORT/"
  if [[ ${1:-} == auth ]]; then
    # The credentials reach curl on its stdin (a config file), not on its command line.
    printf 'user = "%s:%s"\n' "$FLOWER_USER" "$(env_value FLOWER_PASSWORD)" |
      curl -s -o /dev/null -w '%{http_code}' -K - "$url"
  else
    curl -s -o /dev/null -w '%{http_code}' "$url"
  fi
}
flower_answers() { [[ $(flower_code) != 000 ]]; }
flower_auth() {
  wait_for "flower" 120 flower_answers || return 1
  local without with
  without=$(flower_code) with=$(flower_code auth)
  log "flower: $without without credentials, $with with them"
  [[ $without == 401 && $with == 200 ]]
}

# --- main --------------------------------------------------------------------------------------

main() {
  trap teardown EXIT
  find_compose
  write_env
  stage dockerd start_dockerd
  stage standin_images build_standins
  stage build build_app
  stage up start_stack
  stage model make_model
  if [[ $MODE == quick ]]; then
    "$PY" - "$TEST_FILE" "$WORK/small.bio" <<'EOF'
import sys
blocks = open(sys.argv[1], encoding="utf-8").read().split("\n\n")[:100]
open(sys.argv[2], "w", encoding="utf-8").write("\n\n".join(blocks).strip("\n") + "\n")
EOF
    stage reference reference "$WORK/small.bio" "$WORK/expected.conll"
    stage job check job_exact_small run_job "$WORK/small.bio" 100 "$WORK/expected.conll"
    return
  fi
  N=$(awk 'BEGIN { RS = "" } END { print NR }' "$TEST_FILE")
  stage reference reference "$TEST_FILE" "$WORK/expected.conll"
  stage job check results_equal_bin_tag run_job "$TEST_FILE" "$N" "$WORK/expected.conll"
  stage kill_worker check killed_worker_job_exact fault_job kill_worker kill_a_worker
  stage restart_redis check redis_restart_job_exact fault_job restart_redis restart_redis
  stage flower check flower_401_then_200 flower_auth
}

main
