# ActionForge: the API, the workers and the CLI in one image (see compose.yaml).
#   docker build -t actionforge .
#   docker run -p 8000:8000 actionforge      # embedded: SQLite database and queue in /data
#   docker build --build-arg EXTRAS='[train]' -t actionforge-trainer .   # with the trainer

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY llm/ llm/
COPY unified/ unified/
COPY verifiers/ verifiers/
COPY generators/ generators/
COPY service/ service/
COPY trainer/ trainer/
COPY templates/ templates/
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
# Optional extras of the package, e.g. '[train]' (torch, transformers, peft, trl) or '[vllm]'.
ARG EXTRAS=""
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    AF_DATA_DIR=/data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir "$(ls /wheels/*.whl)${EXTRAS}" && rm -rf /wheels
RUN useradd --create-home --uid 10001 actionforge \
    && mkdir /data && chown actionforge:actionforge /data
WORKDIR /app
COPY examples/ examples/
USER actionforge
VOLUME ["/data"]
EXPOSE 8000
CMD ["actionforge", "serve", "--host", "0.0.0.0", "--port", "8000"]
