# syntax=docker/dockerfile:1
# Switchboard in a container: a release build, then a small runtime image that runs
# as a non-root user. Build: docker build -t switchboard .
# Run:   docker run -p 8080:8080 -p 127.0.0.1:8081:8081 -v switchboard-data:/var/lib/switchboard \
#          --env-file deploy/switchboard.env -e SWITCHBOARD_ADMIN_TOKEN=$(openssl rand -hex 16) switchboard
# The admin listener binds 0.0.0.0 inside the container, so the daemon refuses to start without
# SWITCHBOARD_ADMIN_TOKEN; publish 8081 on the host's loopback only, as above.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# The whole workspace (Cargo.toml names bench/peers and benches/); .dockerignore keeps out
# target/, data and the fuzz corpus. The cache mounts keep the registry and the build between
# builds, so a source change does not rebuild the dependencies.
COPY . .
# The revision `switchboard_build_info` reports: docker build --build-arg REVISION=$(git rev-parse --short HEAD)
ARG REVISION=unknown
ENV SWITCHBOARD_REVISION=$REVISION
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin switchboard \
    && strip target/release/switchboard \
    && cp target/release/switchboard /usr/local/bin/switchboard \
    && mkdir -p /state

# glibc and CA certificates, nothing else; the image's user 65532 ("nonroot") owns no files.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /usr/local/bin/switchboard /usr/local/bin/switchboard
COPY --from=build /src/config.toml /etc/switchboard/config.toml
COPY --from=build /src/plugins /etc/switchboard/plugins
COPY --from=build /src/templates /etc/switchboard/templates
ENV SWITCHBOARD_CONFIG=/etc/switchboard/config.toml \
    SWITCHBOARD_LISTEN=0.0.0.0:8080 \
    SWITCHBOARD_ADMIN_LISTEN=0.0.0.0:8081 \
    SWITCHBOARD_STORAGE_URL=sqlite:///var/lib/switchboard/switchboard.db
# Owned by the runtime user, so a fresh volume mounted here is writable.
COPY --from=build --chown=65532:65532 /state /var/lib/switchboard
VOLUME ["/var/lib/switchboard"]
EXPOSE 8080 8081
USER nonroot:nonroot
# The image has no shell or curl: the binary asks its own admin listener's /readyz.
HEALTHCHECK --interval=30s --timeout=6s --start-period=15s --retries=3 CMD ["/usr/local/bin/switchboard", "health"]
ENTRYPOINT ["/usr/local/bin/switchboard"]
CMD ["run"]
