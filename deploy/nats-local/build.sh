#!/usr/bin/env bash
# Builds a NATS server image from Debian's nats-server binary, for machines that cannot reach
# Docker Hub. The image has no shell: just the binary, the libc it links and the loader.
# Usage: deploy/nats-local/build.sh [tag]   (default tag: quorate/nats-local:latest)
# The binary is $QUORATE_NATS_SERVER when set (deploy/nats-local/fetch-nats-server.sh prints one
# of nats-server 2.10), else the nats-server on PATH.
set -euo pipefail
tag="${1:-quorate/nats-local:latest}"
bin="${QUORATE_NATS_SERVER:-$(command -v nats-server || true)}"
if [ -z "$bin" ]; then
  echo "no nats-server: set QUORATE_NATS_SERVER (deploy/nats-local/fetch-nats-server.sh) or apt-get install -y nats-server" >&2
  exit 1
fi
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/rootfs/tmp" "$ctx/rootfs/data"
cp "$bin" "$ctx/rootfs/nats-server"
# Copy every shared object the binary links against, at the path the loader expects.
ldd "$bin" | grep -o '/[^ ]*' | while read -r lib; do
  [ -n "$lib" ] || continue
  mkdir -p "$ctx/rootfs$(dirname "$lib")"
  cp -L "$lib" "$ctx/rootfs$lib"
done
cat > "$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY rootfs/ /
EXPOSE 4222 6222 8222
ENTRYPOINT ["/nats-server"]
CMD ["--http_port", "8222"]
DOCKERFILE
docker build -q -t "$tag" "$ctx"
echo "built $tag from $("$bin" --version)"
