# Huying 呼应 — multi-stage image.
#   docker build -t huying .
#   docker run -d -p 8080:8080 -v huying-data:/var/lib/huying/data huying
# See docs/operations.md#docker.

# --- build --------------------------------------------------------------------------------
# rust:1-bookworm already has gcc, make and perl: enough for the vendored OpenSSL, the bundled
# libpq and the bundled SQLite, so no -dev packages are installed.
FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
# BuildKit cache mounts keep downloaded crates and the target dir between builds; the first
# build compiles OpenSSL, libpq and SQLite from source and takes several minutes.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
 && install -m 0755 target/release/huying /usr/local/bin/huying

# --- run ----------------------------------------------------------------------------------
# The binary needs only glibc; ca-certificates lets the `http` SMS provider reach https gateways.
# config/default.toml and the migrations are compiled into the binary: no files to copy.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 huying \
 && useradd --system --uid 10001 --gid huying --home-dir /var/lib/huying --shell /usr/sbin/nologin huying \
 && install -d -o huying -g huying -m 0750 /var/lib/huying /var/lib/huying/data
COPY --from=builder /usr/local/bin/huying /usr/local/bin/huying
# Numeric, so that runtimes checking "runs as non-root" can verify it.
USER 10001:10001
# The default SQLite URL (sqlite://data/huying.db) is relative: /var/lib/huying/data/huying.db.
WORKDIR /var/lib/huying
ENV HUYING__SERVER__BIND=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/huying"]
CMD ["serve"]
