# syntax=docker/dockerfile:1
#
# crewchief for scaled mode: `crewchief serve` (the default command), `crewchief worker`,
# `crewchief db upgrade` and every other command, from one image.
#
#   docker build -t crewchief .
#   docker build -t crewchief --build-arg EXTRAS=scaled,ollama,google .   # more providers
#
# See docs/deployment.md.

ARG PYTHON_VERSION=3.11

# -- build: install crewchief and its dependencies into a virtualenv ------------------------
FROM python:${PYTHON_VERSION}-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY crewchief ./crewchief

# Extras of pyproject.toml: `scaled` is PostgreSQL, Redis and the job queue.
ARG EXTRAS=scaled
RUN python -m venv /opt/crewchief \
    && /opt/crewchief/bin/pip install ".[${EXTRAS}]"

# -- run: the virtualenv on a clean base, as an unprivileged user ---------------------------
FROM python:${PYTHON_VERSION}-slim

RUN groupadd --system --gid 10001 crewchief \
    && useradd --system --uid 10001 --gid crewchief --create-home \
        --home-dir /home/crewchief --shell /usr/sbin/nologin crewchief \
    && mkdir -p /var/lib/crewchief /workspaces \
    && chown crewchief:crewchief /var/lib/crewchief /workspaces

COPY --from=build /opt/crewchief /opt/crewchief

# The image has no compiler, so it cannot build llama-server for `local:` models: a missing
# local model is an error that says so, instead of a download followed by a failed build.
ENV PATH=/opt/crewchief/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CREWCHIEF_HOME=/var/lib/crewchief \
    CREWCHIEF_LOG_FORMAT=json \
    CREWCHIEF_LOCAL_AUTO_PULL=false

USER crewchief
WORKDIR /home/crewchief

# 8000: the REST API (`serve --port`); 9400: a worker's metrics (`worker --metrics-port`).
EXPOSE 8000 9400

# For `serve` on port 8000. Other commands set their own check (see compose.yaml).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]

ENTRYPOINT ["crewchief"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
