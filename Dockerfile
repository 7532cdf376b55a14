# livetape in a container: `docker build -t livetape .` (or `podman build`), then
#   docker run -p 1935:1935 -p 8080:8080 -v livetape-data:/var/lib/livetape \
#     -e LIVETAPE_API__KEY=change-me livetape
# Every config key can be set as LIVETAPE_<SECTION>__<KEY> (see README, "Configuration"), or
# mount a file and run `serve --config /etc/livetape/livetape.toml`.
# Not built by CI: the machines CI runs on reach no container registry (README, "Container").

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p livetape \
 && install -m 0755 target/release/livetape /usr/local/bin/livetape

FROM debian:bookworm-slim
# curl for the health check; ca-certificates for HTTPS callbacks and buckets.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/livetape livetape \
 && mkdir -p /var/lib/livetape /etc/livetape \
 && chown livetape:livetape /var/lib/livetape
COPY --from=build /usr/local/bin/livetape /usr/local/bin/livetape
USER livetape
# The data dir: the SQLite catalogue, spools, recordings, the journal. Keep it across
# restarts (crash recovery finalizes the spools left in it).
VOLUME /var/lib/livetape
ENV LIVETAPE_SERVER__DATA_DIR=/var/lib/livetape \
    LIVETAPE_SERVER__RTMP_LISTEN=0.0.0.0:1935 \
    LIVETAPE_SERVER__HTTP_LISTEN=0.0.0.0:8080
EXPOSE 1935 8080
# /healthz: serving and recording (200 also while the catalogue is away; /readyz says that).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s \
  CMD curl -fsS http://127.0.0.1:8080/healthz >/dev/null || exit 1
# SIGTERM (docker stop) finalizes recordings and flushes callbacks for up to
# [server] shutdown_flush_s (10 s): give `docker stop -t 40` or stop_grace_period room for it.
STOPSIGNAL SIGTERM
ENTRYPOINT ["livetape"]
CMD ["serve"]
