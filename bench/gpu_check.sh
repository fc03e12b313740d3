#!/usr/bin/env bash
# The whole GPU check in one call (5 minutes by default on one H100/H200): CPU-vs-CUDA tag agreement
# on the 1953 test sentences, model-only throughput at several batch budgets, a 200k-sentence
# embedded (SQLite) job through bin/submit in one process, the same job through the Celery path
# (a private Redis and one bin/worker with N processes per GPU, on SQLite, then on a private
# PostgreSQL where the machine has one), the embedded job in 4 processes sharing the GPU, and
# last the model tests that run on CUDA (tags and scores independent of batch size and padding),
# in what is left of --budget. Prints one JSON document.
#
#   bench/gpu_check.sh [--model DIR] [--device cuda|cpu] [--sentences N] [--processes-per-gpu N]
#                      [--skip tests,job,celery] [--budget S]
#
# Needs only the machine's own torch, numpy and safetensors for the throughput part; seqeval for
# the agreement's F1; pytest for the tests; the project's other dependencies (pyproject.toml:
# celery, redis, sqlalchemy, prometheus-client, ...) for the jobs, and redis-server (and initdb)
# for the Celery job. Where the Python lacks them, the wheels that bench/gpu_prepare.sh gathers in
# .whl/ (carried there with the corpus, the model and a redis-server: it prints the call) are
# installed first. A part whose imports or programs are missing reports the error in its JSON
# entry instead of stopping the check.
# `--device cpu --sentences 2000` runs the same code on a CPU machine.
set -euo pipefail
export NERQ_CHECK_STARTED=$(date +%s)  # --budget counts from here
cd "$(dirname "$(readlink -f "$0")")/.."
export NERQ_PYTHON="${NERQ_PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# A GPU machine's own Python lacks the project's storage, queue and scoring packages: install the
# wheels bench/gpu_prepare.sh put in .whl/ (carried there), unless this Python has them already.
if ! "$NERQ_PYTHON" -c 'import celery, prometheus_client, pydantic_settings, seqeval, sqlalchemy' 2>/dev/null && compgen -G '.whl/*.whl' >/dev/null; then
  site=/tmp/nerq-site
  "$NERQ_PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" .whl/*.whl \
    || echo "gpu_check: installing .whl failed; the parts that need those packages say so" >&2
  export PYTHONPATH="$PYTHONPATH:$site"
fi
# The Celery job's Redis: the machine's, else the one bench/gpu_prepare.sh carried.
if ! command -v redis-server >/dev/null && [[ -x var/gpu-redis/redis-server ]]; then
  export PATH="$PWD/var/gpu-redis:$PATH"
fi
# Its parts share --budget (default 300 s); past it and 30 s more, it is stopped and prints what it has.
budget=300
for ((i = 1; i < $#; i++)); do [[ ${!i} == --budget ]] && { j=$((i + 1)); budget=${!j}; }; done
exec timeout -k 10 $((${budget%.*} + 30)) "$NERQ_PYTHON" bench/gpu_check.py "$@"
