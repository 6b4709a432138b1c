# The creditgraph API (and CLI) on CPython 3.11. Build: docker build -t creditgraph .
# torch is a dependency: for a CPU-only image, pass a CPU wheel index as
#   --build-arg PIP_EXTRA_INDEX_URL=<your CPU-only torch index>
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
ARG PIP_EXTRA_INDEX_URL=""

# jemalloc: `creditgraph train` / `score` re-execute under it (src/creditgraph/entry.py).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libjemalloc2 \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 creditgraph \
    && mkdir /data && chown creditgraph:creditgraph /data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
# src/creditgraph/resources links to these two: the wheel carries them as package data.
COPY graph_schema ./graph_schema
COPY training ./training
RUN PIP_EXTRA_INDEX_URL="$PIP_EXTRA_INDEX_URL" pip install .

USER creditgraph
ENV CREDITGRAPH_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8000
CMD ["creditgraph", "serve", "--host", "0.0.0.0", "--port", "8000"]
