# Switchboard in a container: a static-ish release build, then a small runtime image that runs
# as a non-root user. Build: docker build -t switchboard .
# Run:   docker run -p 8080:8080 -p 127.0.0.1:8081:8081 -v switchboard-data:/var/lib/switchboard \
#          --env-file deploy/switchboard.env switchboard

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies first, so a source change does not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked --bin switchboard || true
COPY src src
COPY plugins plugins
COPY templates templates
COPY config.toml config.toml
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin switchboard \
    && strip target/release/switchboard

# glibc and CA certificates, nothing else; the image's user 65532 ("nonroot") owns no files.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/switchboard /usr/local/bin/switchboard
COPY --from=build /src/config.toml /etc/switchboard/config.toml
COPY --from=build /src/plugins /etc/switchboard/plugins
COPY --from=build /src/templates /etc/switchboard/templates
ENV SWITCHBOARD_CONFIG=/etc/switchboard/config.toml \
    SWITCHBOARD_LISTEN=0.0.0.0:8080 \
    SWITCHBOARD_ADMIN_LISTEN=0.0.0.0:8081 \
    SWITCHBOARD_STORAGE_URL=sqlite:///var/lib/switchboard/switchboard.db
VOLUME ["/var/lib/switchboard"]
EXPOSE 8080 8081
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/switchboard"]
CMD ["run"]
