# The two images of Synapsor Runner, for users with Docker:
#
#   docker build --target runner     -t ghcr.io/synapsor/synapsor-runner:0.1.0 .
#   docker build --target controller -t ghcr.io/synapsor/synapsor-controller:0.1.0 .
#
# Each image holds one binary, the libraries it links, the CA certificates and the non-root user
# 65532, assembled by scripts/lib/image-rootfs.sh: the same recipe scripts/images.sh uses to build
# them without Docker (a docker-archive imported into containerd). No shell, no package manager.
# TLS is rustls and SQLite is bundled, so the binaries need nothing else.
ARG VERSION=0.1.0
ARG SOURCE=https://github.com/synapsor/synapsor-runner-rs

FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p synapsor-runner -p synapsor-controller \
    && bash scripts/lib/image-rootfs.sh target/release/synapsor-runner /out/synapsor-runner \
    && bash scripts/lib/image-rootfs.sh target/release/synapsor-controller /out/synapsor-controller

FROM scratch AS controller
ARG VERSION
ARG SOURCE
COPY --from=build /out/synapsor-controller/ /
USER 65532:65532
ENV PATH=/usr/local/bin:/usr/bin:/bin
LABEL org.opencontainers.image.title=synapsor-controller \
      org.opencontainers.image.version=$VERSION \
      org.opencontainers.image.source=$SOURCE \
      org.opencontainers.image.licenses=Apache-2.0
ENTRYPOINT ["/usr/local/bin/synapsor-controller"]

FROM scratch AS runner
ARG VERSION
ARG SOURCE
COPY --from=build /out/synapsor-runner/ /
USER 65532:65532
ENV PATH=/usr/local/bin:/usr/bin:/bin
LABEL org.opencontainers.image.title=synapsor-runner \
      org.opencontainers.image.version=$VERSION \
      org.opencontainers.image.source=$SOURCE \
      org.opencontainers.image.licenses=Apache-2.0
ENTRYPOINT ["/usr/local/bin/synapsor-runner"]
