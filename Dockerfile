# Build: docker build -t dcr-shim .
# The base images are build arguments, so that a registry mirror or a pinned digest can stand
# in for them: docker build --build-arg RUST_IMAGE=… --build-arg RUNTIME_IMAGE=… .
#
# Stages, in this order:
#   runtime   the image without the binary: user 10001, /data, the tenants, the settings
#   prebuilt  runtime + a binary built elsewhere, taken from the build context (no Rust image):
#               docker build --target prebuilt --build-arg BINARY=dcr-shim \
#                 --build-arg RUNTIME_IMAGE=… -f Dockerfile CONTEXT
#             where CONTEXT holds the binary (as BINARY names it) and tenants/; deploy/release.sh
#             makes such a context. The binary must need no newer glibc than the runtime
#             image's (bookworm: 2.36). Without a registry, deploy/image/make-base.sh makes a
#             RUNTIME_IMAGE from a Debian mirror.
#   build     compiles the binary in the Rust image
#   (last)    runtime + the binary from build: what a plain `docker build .` makes
# The classic builder (DOCKER_BUILDKIT=0) builds every stage up to the target, in order: with
# --target prebuilt it never reaches build; a plain build runs prebuilt too, which then copies
# a placeholder (deploy/image/no-binary) that the last stage does not use. BuildKit builds only
# the stages the target needs.
#
# OCI labels: VERSION, REVISION (the full commit) and CREATED (RFC 3339) are build arguments
# (deploy/release.sh sets them; "unknown" otherwise), and SOURCE the repository's URL.
ARG RUST_IMAGE=rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUNTIME_IMAGE} AS runtime
ARG SOURCE=
LABEL org.opencontainers.image.title="dcr-shim" \
      org.opencontainers.image.description="OAuth authorization server for MCP servers behind Microsoft Entra ID or any OpenID Connect provider: Dynamic Client Registration and Client ID Metadata Documents mapped onto a few app registrations" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0" \
      org.opencontainers.image.source="${SOURCE}"
RUN useradd --system --uid 10001 --home-dir /data dcr-shim \
    && mkdir -p /data /etc/dcr-shim/tenants && chown dcr-shim /data
COPY tenants /etc/dcr-shim/tenants
USER dcr-shim
ENV DCR_SHIM_LISTEN=0.0.0.0:8080 \
    DCR_SHIM_DATA_DIR=/data \
    DCR_SHIM_TENANTS=/etc/dcr-shim/tenants
VOLUME /data
EXPOSE 8080
# `dcr-shim healthcheck` asks /healthz on the DCR_SHIM_LISTEN port (the image has no curl).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["dcr-shim", "healthcheck"]
ENTRYPOINT ["dcr-shim"]
CMD ["serve"]
# Last in the stage: a new version or date rebuilds no layer but this one.
ARG VERSION=unknown
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"

FROM runtime AS prebuilt
# The binary's path in the build context.
ARG BINARY=deploy/image/no-binary
COPY ${BINARY} /usr/local/bin/dcr-shim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
# Dependencies first, against placeholder sources: this layer is rebuilt only when Cargo.toml
# or Cargo.lock change, so a source edit recompiles the shim alone. (The bench targets named
# in Cargo.toml must exist for cargo to read the manifest.)
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches \
    && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && echo 'fn main() {}' > benches/registration.rs && cp benches/registration.rs benches/scale.rs \
    && cargo build --release --locked --bin dcr-shim \
    && rm -rf src benches target/release/dcr-shim* target/release/deps/dcr_shim-* \
       target/release/deps/libdcr_shim-* target/release/.fingerprint/dcr-shim-*
COPY build.rs ./
COPY src ./src
COPY benches ./benches
# .git is not in the build context: the commit for dcr_shim_build_info comes as an argument
# (docker build --build-arg DCR_SHIM_COMMIT=$(git rev-parse --short=12 HEAD) .).
ARG DCR_SHIM_COMMIT=unknown
RUN DCR_SHIM_COMMIT=${DCR_SHIM_COMMIT} cargo build --release --locked --bin dcr-shim

FROM runtime
COPY --from=build /src/target/release/dcr-shim /usr/local/bin/dcr-shim
