# The image the Helm chart runs: both binaries, synapsor-runner (the sidecar) and
# synapsor-controller, on a distroless base (glibc, CA certificates, no shell), as user 65532.
#
#   docker build -t ghcr.io/synapsor/synapsor-runner:0.1.0 .
#
# TLS is rustls and SQLite is bundled, so the binaries need nothing else from the base image.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p synapsor-runner -p synapsor-controller

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/synapsor-runner /src/target/release/synapsor-controller /usr/local/bin/
USER 65532:65532
ENTRYPOINT ["synapsor-runner"]
