# cptd in a small image: built with the Rust toolchain, run on Debian slim as
# an unprivileged user, the data directory a volume.
#   docker build -t cptd .
#   docker run -v cptd-data:/var/lib/cptd -v "$PWD/secrets:/etc/cptd:ro" -p 50051:50051 cptd \
#       --tls-cert /etc/cptd/tls.crt --tls-key /etc/cptd/tls.key --auth-policy /etc/cptd/policy.toml
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked && install -m 0755 target/release/cptd /cptd

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/cptd cptd \
    && install -d -m 0700 -o cptd -g cptd /var/lib/cptd
COPY --from=build /cptd /usr/local/bin/cptd
USER 10001:10001
VOLUME /var/lib/cptd
ENV CPTD_LISTEN=0.0.0.0:50051 \
    CPTD_DATA_DIR=/var/lib/cptd \
    CPTD_LOG_FORMAT=json
EXPOSE 50051
# With TLS, probe with the CA: cptd probe --tls-ca /etc/cptd/ca.crt --tls-server-name NAME
HEALTHCHECK --interval=10s --timeout=3s CMD ["cptd", "probe", "--address", "127.0.0.1:50051"]
ENTRYPOINT ["cptd"]
