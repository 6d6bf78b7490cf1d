# kibertas-async as an in-cluster Job (e.g. an Argo CD PostSync hook): the CLI with the built-in plugins,
# their runtime dependencies pinned by constraints.txt, and nothing else (no sandbox extras, no test tools).
#
#   docker build -t kibertas-async .
#   docker build --secret id=ca-bundle,src=/etc/ssl/certs/ca-certificates.crt -t kibertas-async .   # behind a TLS-inspecting proxy
#
# BASE_IMAGE is any Debian-like image with python3 (3.11+) and its venv module: python:3.11-slim (python in
# /usr/local/bin) or a Debian 12 with python3, python3-venv and tini (/usr/bin; see scripts/image). Both
# stages use it, so the virtualenv built in the first runs unchanged in the second.
# Runs as uid 65532, writes nothing outside /tmp (read-only root filesystem: mount an emptyDir at /tmp),
# with tini as PID 1 so SIGTERM reaches the engine, which then cleans up before exiting.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN python3 -m venv /opt/venv
# The pinned dependencies first: this layer is rebuilt only when the lock changes. The CA bundle is an
# optional build secret (never part of a layer) for networks whose TLS proxy has its own CA.
COPY constraints.txt /src/constraints.txt
RUN --mount=type=secret,id=ca-bundle \
    if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi; \
    /opt/venv/bin/python -m pip install --no-deps --requirement /src/constraints.txt
COPY pyproject.toml README.md /src/
COPY kibertas_async /src/kibertas_async
COPY plugins /src/plugins
# Offline: our distributions only, then `pip check` proves the lock satisfies every requirement they
# declare; the installer and the build backend leave the runtime virtualenv.
RUN /opt/venv/bin/python -m pip install --no-index --no-deps --no-build-isolation /src /src/plugins/*/ \
    && /opt/venv/bin/python -m pip check \
    && /opt/venv/bin/python -m pip uninstall --yes --quiet setuptools pip \
    && /opt/venv/bin/kibertas-async --version

FROM ${BASE_IMAGE}
RUN if ! command -v tini >/dev/null; then \
        apt-get update && apt-get install -y --no-install-recommends tini && rm -rf /var/lib/apt/lists/*; \
    fi \
    && groupadd --gid 65532 kibertas \
    && useradd --uid 65532 --gid 65532 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin kibertas
COPY --from=build /opt/venv /opt/venv
# HOME and every cache on /tmp; no bytecode written at run time (it was compiled at install).
ENV PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    XDG_CONFIG_HOME=/tmp/.config \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LANG=C.UTF-8
WORKDIR /tmp
USER 65532:65532
# Inside a Pod with no kubeconfig, the Pod's service account is used and named by CLUSTER_NAME.
ENTRYPOINT ["tini", "--", "kibertas-async"]
CMD ["run", "--all", "--log-format", "json"]
