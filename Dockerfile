# Gantry's image: the `gantry` binary as the entrypoint, so that `args: [controller]` or
# `args: [bookinfo, reviews, --version, v2]` pick the program. Not built in CI (no container
# engine on the CI machines); kept minimal and in step with the chart and manifests.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY src ./src
RUN cargo build --release --locked && strip target/release/gantry

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/gantry /usr/local/bin/gantry
USER 65532:65532
EXPOSE 8080 9901
ENTRYPOINT ["/usr/local/bin/gantry"]
CMD ["--help"]
