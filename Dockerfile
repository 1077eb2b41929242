# Build: docker build -t dcr-shim .
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
RUN cargo build --release --locked --bin dcr-shim

FROM debian:bookworm-slim
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
ENTRYPOINT ["dcr-shim"]
CMD ["serve"]
