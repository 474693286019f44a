# Dockerfile - the scribed container: built on Debian 12, run on
# debian:bookworm-slim with only the shared libraries the binary links
# (computed from the binary itself by deploy/runtime-deps.sh), as a non-root
# user, data and models under /data. Runs with a read-only root filesystem,
# a tmpfs /tmp and no-new-privileges (docs/DEPLOYMENT.md has the commands).
# Models are downloaded onto /data on first start, or baked into the image:
#   docker build --build-arg SCRIBED_BAKE_MODELS="base.en silero" -t scribed .
# The Fly.io build passes SCRIBED_START_USER=root (fly.toml): its volumes are
# mounted root-owned, so the entrypoint chowns /data and drops to uid 10001.

ARG DEBIAN_RELEASE=bookworm

# ---- build stage: compile build/scribed, optionally fetch models ----------
FROM debian:${DEBIAN_RELEASE} AS build
ARG DEBIAN_FRONTEND=noninteractive
# the -dev packages of the CI list are the build dependencies (test-only
# tools such as ffmpeg, sox and pytest are not needed to build)
COPY .ci/packages.txt /tmp/packages.txt
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config binutils \
        ca-certificates $(grep -E -- '-dev$' /tmp/packages.txt) \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY src ./src
COPY tools ./tools
COPY web ./web
COPY deploy/runtime-deps.sh ./deploy/
RUN make -j"$(nproc)" build/scribed \
 && strip --strip-debug build/scribed \
 && ./build/scribed --help >/dev/null \
 && deploy/runtime-deps.sh build/scribed > build/runtime-packages.txt \
 && cat build/runtime-packages.txt
# space-separated model names (`scribed model list`), e.g. "base.en silero"
ARG SCRIBED_BAKE_MODELS=""
RUN mkdir -p /opt/scribed/models \
 && for m in $SCRIBED_BAKE_MODELS; do \
        ./build/scribed model download "$m" --data-dir /opt/scribed || exit 1; \
    done

# ---- runtime stage ---------------------------------------------------------
FROM debian:${DEBIAN_RELEASE}-slim AS runtime
ARG DEBIAN_FRONTEND=noninteractive
ARG SCRIBED_UID=10001
# root only for the Fly.io volume hand-over (see the header); everything
# else starts as the service user
ARG SCRIBED_START_USER=scribed
COPY --from=build /src/build/runtime-packages.txt /tmp/runtime-packages.txt
# curl: the HEALTHCHECK probe (libcurl is linked anyway, so it adds ~0.3 MB);
# ca-certificates: HTTPS model downloads and webhooks
RUN apt-get update \
 && apt-get install -y --no-install-recommends $(cat /tmp/runtime-packages.txt) \
        ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages.txt \
 && groupadd --system --gid "$SCRIBED_UID" scribed \
 && useradd --system --uid "$SCRIBED_UID" --gid scribed --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin scribed \
 && mkdir -p /data/models \
 && chown -R scribed:scribed /data \
 && chmod 0750 /data
COPY --from=build /src/build/scribed /usr/local/bin/scribed
COPY --from=build /opt/scribed /opt/scribed
COPY deploy/entrypoint.sh /usr/local/bin/scribed-entrypoint

# Defaults sized for one shared vCPU and 1.8 GB with base.en: one inference
# worker; audio up to 2 h (a job holds its decoded audio, ~380 MB per hour,
# so the 4 h default would not fit); few malloc arenas, big buffers handed
# back to the kernel when freed (docs/DEPLOYMENT.md, "Memory").
ENV SCRIBED_HOST=0.0.0.0 \
    SCRIBED_PORT=8080 \
    SCRIBED_DATA_DIR=/data \
    SCRIBED_MODEL_NAME=base.en \
    SCRIBED_VAD_NAME=silero-v6.2.0 \
    SCRIBED_WORKERS=1 \
    SCRIBED_MAX_FILE_SIZE_MB=500 \
    MALLOC_ARENA_MAX=2 \
    MALLOC_MMAP_THRESHOLD_=1048576 \
    MALLOC_TRIM_THRESHOLD_=4194304

VOLUME /data
EXPOSE 8080
WORKDIR /data
USER ${SCRIBED_START_USER}
STOPSIGNAL SIGTERM
# 503 while the model loads or during a drain; start-period covers a first
# start that downloads base.en (148 MB)
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 \
    CMD curl -fsS --max-time 8 -o /dev/null "http://127.0.0.1:${SCRIBED_PORT}/health" || exit 1
# through sh, so the script needs no exec bit (checkouts can lose it)
ENTRYPOINT ["/bin/sh", "/usr/local/bin/scribed-entrypoint"]
CMD ["serve"]
