# nerqueue: one image for every service of docker-compose.yml (workers, beat, flower, migrate).
#   docker build -t nerqueue:cpu .                                   # CPU build of torch
#   docker build -t nerqueue:cu128 --build-arg TORCH_VARIANT=cu128 . # CUDA 12.8 build, GPU workers
# BASE_IMAGE: any image with Python 3.11 as /usr/local/bin/python and pip on PATH, e.g. a local
# stand-in on a host that reaches no image registry (docs/deploy.md, "Air-gapped hosts").
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

# Which torch wheel: `cpu`, or a CUDA build such as `cu128` (the GPU worker's image).
ARG TORCH_VARIANT=cpu

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    NERQ_PYTHON=/usr/local/bin/python

# PYTHONPATH=/app: every process (bin/*, and celery/flower started directly) imports the code
# under /app, so the repository-relative paths (var/, data/) resolve there, as bin/_python does.
# NERQ_PYTHON: bin/* use the image's python instead of looking for .venv/ (an absolute path:
# bin/_python checks it with -x).

RUN useradd --create-home --uid 1000 --user-group nerq
WORKDIR /app

# Layers from the least to the most often changed. torch first: it is the largest, and with
# it in place the project's pin (torch>=2.3,<3) is already met and pip keeps this build.
# A wheel for this variant in deploy/wheels/ (torch-2.13.0+cpu-...whl) is installed instead of
# the download, for hosts that cannot reach the PyTorch index; the directory is empty in git.
COPY deploy/wheels/ /tmp/wheels/
RUN set -e; \
    if ls /tmp/wheels/torch-2.13.0+${TORCH_VARIANT}-*.whl >/dev/null 2>&1; then \
      pip install --find-links /tmp/wheels "torch==2.13.0+${TORCH_VARIANT}"; \
    else \
      pip install "torch==2.13.0" --index-url "https://download.pytorch.org/whl/${TORCH_VARIANT}"; \
    fi; \
    rm -rf /tmp/wheels

# The dependencies, read from pyproject.toml alone, so a code change does not reinstall them.
# seqeval is published as a source archive only, whose setup.py fetches setuptools-scm by itself
# (setup_requires): today's setuptools-scm then lacks its own dependency (vcs-versioning) and the
# build fails. It is built against a setuptools-scm installed with its dependencies beforehand.
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['monitor']))" > /tmp/requirements.txt \
 && grep '^seqeval' /tmp/requirements.txt > /tmp/sdists.txt \
 && pip install wheel setuptools-scm \
 && pip install --no-build-isolation -r /tmp/sdists.txt \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt /tmp/sdists.txt

# The project: setuptools needs the packages (and the readme) to build it; everything it
# depends on is installed by now, so this layer is quick.
COPY README.md ./
COPY model ./model
COPY storage ./storage
COPY worker ./worker
COPY bin ./bin
RUN pip install ".[monitor]" \
 && rm -rf build ./*.egg-info \
 && mkdir -p var/models var/beat data \
 && chown -R nerq:nerq var data

# var/models and var/beat are volumes in docker-compose.yml (a new named volume takes this
# ownership); data/ is where bin/train and the evaluations download the corpus if none is given.
USER nerq

CMD ["bin/worker"]
