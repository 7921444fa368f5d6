# syntax=docker/dockerfile:1.7
#
# One image for every courier binary: the producer (order API), the consumers and the mock downstream APIs.
# A container picks its binary by its command (`docker run courier producer`, compose `command:`); the
# default is the producer.
#
#   DOCKER_BUILDKIT=1 docker build -t courier .
#   docker run --rm -p 8080:8080 -e COURIER__KAFKA__BOOTSTRAP_SERVERS=broker:9092 courier
#   docker run --rm courier inventory        # likewise payment, notification, shipping, forward
#
# The image holds the producer, mock-apis and every consumer binary (consumers/src/bin/*.rs), so a new
# consumer needs no change here; a compose service names it by its `command:` (tests/tests/e2e/compose.rs checks they exist).

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

# ---------------------------------------------------------------------------------------------------------
# Build: librdkafka is compiled from source by rdkafka-sys (C toolchain, make, zlib headers) with TLS and SASL
# SCRAM (OpenSSL headers) and zstd (built from source); reqwest uses native-tls (OpenSSL headers, pkg-config).
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS builder

RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config libssl-dev zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src

# A workspace needs every member's manifest and sources to resolve, so the whole context is copied
# (.dockerignore keeps target/ and .git out); the registry, git checkouts and target/ live in BuildKit cache
# mounts, so a source change rebuilds only the courier crates.
COPY . .

# The commit the binaries report in courier_build_info (`--build-arg COURIER_GIT_SHA=$(git rev-parse HEAD)`).
ARG COURIER_GIT_SHA=unknown
ENV COURIER_GIT_SHA=${COURIER_GIT_SHA}

# The cache mount for target/ is not part of the image: the binaries are copied out in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bins -p courier-producer -p courier-consumers -p mock-apis -p courier-dlq \
 && mkdir -p /out \
 && for bin in producer mock-apis courier-dlq $(basename -s .rs consumers/src/bin/*.rs); do cp "target/release/$bin" /out/; done

# ---------------------------------------------------------------------------------------------------------
# Runtime: glibc, OpenSSL 3 and the CA bundle (native-tls, and librdkafka's TLS to Kafka, which finds the system's
# CAs); librdkafka itself is linked in statically.
FROM debian:${DEBIAN_RELEASE}-slim AS runtime

LABEL org.opencontainers.image.title="courier" \
      org.opencontainers.image.description="courier: order API publishing order events to Kafka, consumers calling downstream APIs, mock APIs" \
      org.opencontainers.image.licenses="Apache-2.0"

RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 \
 && rm -rf /var/lib/apt/lists/*

# Unprivileged user `courier` (uid/gid 10001). USER is numeric so that Kubernetes' runAsNonRoot can verify it.
RUN groupadd --system --gid 10001 courier \
 && useradd --system --uid 10001 --gid courier --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin courier

COPY --from=builder /out/ /usr/local/bin/

# The working directory holds the JSON Schemas of event data (schemas/), so that the relative paths the settings
# name them by resolve as they do from the repository's root (producer.events.users.schema =
# "schemas/events/user.registered.json"). Mount other schemas anywhere and name them by an absolute path.
WORKDIR /usr/share/courier
COPY schemas/ /usr/share/courier/schemas/

USER 10001:10001

# The producer's order API (COURIER__PRODUCER__LISTEN, default 0.0.0.0:8080) and a consumer's health server
# (COURIER__CONSUMER__HEALTH_LISTEN, default 0.0.0.0:8081: GET /healthz, GET /readyz). mock-apis listens where
# its --listen says (compose: 0.0.0.0:8090).
EXPOSE 8080 8081

# No wrapper entrypoint: the binary is PID 1 and receives SIGTERM from `docker stop` itself
# (compose adds `init: true` to reap zombies and forward signals).
CMD ["producer"]
