# kibertas-async as an in-cluster Job (e.g. an Argo CD PostSync hook): the CLI with the built-in plugins.
# Build from the repository root: docker build -t kibertas-async .
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY kibertas_async ./kibertas_async
COPY plugins ./plugins
RUN pip wheel --no-cache-dir --wheel-dir /wheels . plugins/*/

FROM python:3.11-slim
RUN useradd --uid 65532 --no-create-home --shell /usr/sbin/nologin kibertas
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER 65532
# Inside a Pod with no kubeconfig, the Pod's service account is used and named by CLUSTER_NAME.
ENTRYPOINT ["kibertas-async"]
CMD ["run", "--all", "--log-format", "json"]
