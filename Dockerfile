# syntax=docker/dockerfile:1
# The mtl image: ENTRYPOINT mtl, the recipes in /opt/mtl/recipes, working folder /work.
#
#   docker build -t ghcr.io/your-org/mtl-tf:0.1.0 .                              # CPU
#   docker build --build-arg VARIANT=gpu -t ghcr.io/your-org/mtl-tf:0.1.0-gpu .  # NVIDIA GPU
#
# The GPU variant installs tensorflow[and-cuda], whose wheels carry the CUDA and cuDNN
# libraries: the node needs only the NVIDIA driver (the GPU device plugin mounts it).
# The base image is pinned by tag; pin it by digest (python:3.11-slim-bookworm@sha256:...)
# where your registry can resolve one.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG VARIANT=cpu

FROM ${PYTHON_IMAGE} AS builder
WORKDIR /src
RUN pip install --no-cache-dir "build>=1.2,<2"
COPY setup.cfg pyproject.toml README.md ./
COPY mtl_tf ./mtl_tf
COPY pipelines ./pipelines
RUN python -m build --wheel --outdir /dist

FROM ${PYTHON_IMAGE} AS runtime
ARG VARIANT
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib
COPY --from=builder /dist/ /tmp/dist/
# The serving extra brings the gRPC client, postgres the MLflow server's database driver.
RUN set -eux; \
    wheel="$(ls /tmp/dist/mtl_tf-*.whl)"; \
    if [ "$VARIANT" = "gpu" ]; then pip install "tensorflow[and-cuda]>=2.21,<2.22"; \
    elif [ "$VARIANT" != "cpu" ]; then echo "VARIANT must be cpu or gpu, not $VARIANT" >&2; exit 1; fi; \
    pip install "${wheel}[serving,postgres]"; \
    rm -rf /tmp/dist; \
    groupadd --gid 10001 mtl; \
    useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin mtl; \
    mkdir -p /work; \
    chown 10001:10001 /work
COPY recipes /opt/mtl/recipes
WORKDIR /work
# The manifests run every mtl pod as this user (runAsUser: 10001).
USER 10001:10001
ENTRYPOINT ["mtl"]
CMD ["--help"]
