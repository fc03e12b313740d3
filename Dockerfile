# nerqueue: one image for every service of docker-compose.yml (workers, beat, flower, migrate).
#   docker build -t nerqueue:cpu .                                   # CPU build of torch
#   docker build -t nerqueue:cu128 --build-arg TORCH_VARIANT=cu128 . # CUDA 12.8 build, GPU workers
FROM python:3.11-slim

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
# it in place the project's pin (torch<=2.13.0) is already met and pip keeps this build.
RUN pip install "torch==2.13.0" --index-url "https://download.pytorch.org/whl/${TORCH_VARIANT}"

# The dependencies, read from pyproject.toml alone, so a code change does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['monitor']))" > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

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
