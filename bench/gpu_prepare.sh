#!/usr/bin/env bash
# Everything bench/gpu_check.sh needs on a lent GPU machine, gathered here in the checkout (git
# ignores each path), then the one device call to make. That machine has its own Python (3.12),
# torch, numpy, safetensors, tqdm, scikit-learn, matplotlib and pytest, but no network, none of
# the project's storage, queue or scoring packages, and only what travels with the checkout:
#   .whl/                     wheels of the missing packages (the versions of this venv), for
#                             gpu_check.sh to install first;
#   data/mit_movie_trivia/    the corpus (found as ./data, as here: ../shared does not travel);
#   var/gpu-model/            a copy of --model;
#   var/gpu-redis/            this machine's redis-server, for the Celery job, with the libraries
#                             it links beyond glibc's, run through a wrapper that points the loader
#                             at them.
#
#   bench/gpu_prepare.sh --model DIR [--python-version 3.12]
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
model="" version=3.12
while (($#)); do
  case $1 in
    --model) model=$2; shift 2 ;;
    --python-version) version=$2; shift 2 ;;
    *) echo "gpu_prepare: unknown option $1 (use --model DIR [--python-version X.Y])" >&2; exit 2 ;;
  esac
done
[[ -f $model/model.safetensors ]] || { echo "gpu_prepare: --model DIR must be a model directory (no $model/model.safetensors)" >&2; exit 2; }
PY=${NERQ_PYTHON:-.venv/bin/python}
[[ -x $PY ]] || { echo "gpu_prepare: no $PY: run make setup first (the wheels take its versions)" >&2; exit 2; }
quiet() { "$@" 2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2); }  # this host's pip config

rm -rf .whl && mkdir -p .whl
# The project's dependencies that the GPU image lacks, with what they need (none of which is numpy
# or torch, which must stay the image's own), at the versions of this venv. Read from pyproject.toml,
# so that a new dependency travels too (prometheus-client once did not, and the embedded job failed).
listed=$("$PY" - <<'EOF'
import tomllib
from packaging.requirements import Requirement
image = {"torch", "numpy", "safetensors", "tqdm", "matplotlib", "seqeval"}  # seqeval: built below
for spec in tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]:
    req = Requirement(spec)
    if req.name.lower() not in image:
        print(req.name + (f"[{','.join(sorted(req.extras))}]" if req.extras else ""))
EOF
)
mapfile -t needed <<<"$listed"
platforms=(--platform manylinux2014_x86_64)
for n in 17 24 27 28 31 34; do platforms+=(--platform "manylinux_2_${n}_x86_64"); done
"$PY" -m pip freeze --exclude-editable | grep -v ' @ ' >.whl/constraints.txt
quiet "$PY" -m pip download -q --only-binary=:all: --python-version "$version" --implementation cp \
  "${platforms[@]}" -c .whl/constraints.txt -d .whl "${needed[@]}"
# seqeval ships only a source archive: a pure-Python wheel built here runs anywhere (its own
# needs, numpy and scikit-learn, are on the GPU image).
quiet "$PY" -m pip wheel -q --no-deps -c .whl/constraints.txt -w .whl seqeval
rm .whl/constraints.txt
if ls .whl | sed 's/-[0-9].*//' | sort | uniq -d | grep .; then
  echo "gpu_prepare: two versions of one package in .whl: pip would refuse them" >&2; exit 1
fi

corpus=$("$PY" -c 'from model.data import find_corpus; print(find_corpus(download=False))' 2>/dev/null) || {
  echo "gpu_prepare: no corpus found here: set NERQ_DATA_DIR to the folder that holds trivia10k13{train,test}.bio" >&2
  exit 2
}
if [[ $(readlink -f "$corpus") != "$(readlink -f data/mit_movie_trivia)" ]]; then
  mkdir -p data/mit_movie_trivia && cp "$corpus"/trivia10k13*.bio data/mit_movie_trivia/
fi
if [[ $(readlink -f "$model") != "$(readlink -f var/gpu-model)" ]]; then
  rm -rf var/gpu-model && mkdir -p var && cp -rL "$model" var/gpu-model
fi

redis=$(command -v redis-server) || { echo "gpu_prepare: no redis-server here (apt-get install redis-server)" >&2; exit 2; }
rm -rf var/gpu-redis && mkdir -p var/gpu-redis/lib && cp -L "$redis" var/gpu-redis/lib/
ldd "$redis" | awk '$3 ~ /^\// {print $3}' | grep -Ev '/(libc|libm|libdl|libpthread|librt)\.so' \
  | xargs -r cp -L -t var/gpu-redis/lib/
cat >var/gpu-redis/redis-server <<'EOF'
#!/bin/sh
lib="$(dirname "$(readlink -f "$0")")/lib"
LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$lib/redis-server" "$@"
EOF
chmod +x var/gpu-redis/redis-server

echo "carried: $(du -shc .whl data var/gpu-model var/gpu-redis | tail -1 | cut -f1) (the limit is 64 MiB with the checkout)"
# The check stops itself at 330 s (--budget 300 and 30 s to print): with a machine's start, two
# tries fit in a session's 15 minutes of device time.
echo 'device run: command "bench/gpu_check.sh --model var/gpu-model", carry [".whl", "data", "var/gpu-model", "var/gpu-redis"], timeout_s 400'
