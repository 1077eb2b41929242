# Build: docker build -t dcr-shim .
# The base images are build arguments, so that a registry mirror or a pinned digest can stand
# in for them: docker build --build-arg RUST_IMAGE=… --build-arg RUNTIME_IMAGE=… .
ARG RUST_IMAGE=rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

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

FROM ${RUNTIME_IMAGE}
RUN useradd --system --uid 10001 --home-dir /data dcr-shim \
    && mkdir -p /data /etc/dcr-shim/tenants && chown dcr-shim /data
COPY --from=build /src/target/release/dcr-shim /usr/local/bin/dcr-shim
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
