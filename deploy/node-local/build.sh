#!/usr/bin/env bash
# Builds a minimal Node.js base image from this machine's node binary, for machines that cannot
# reach Docker Hub (deploy/Dockerfile then builds on it with --build-arg BASE_IMAGE=<tag>).
# The image holds the binary, the shared libraries it links (ldd), the CA certificates if the
# host has them, and a passwd/group naming root and node (uid/gid 1000, as the official image).
# It has no shell and no npm: only `node`.
# Usage: deploy/node-local/build.sh [tag]   (default tag: quorate/node-local:latest)
set -euo pipefail
tag="${1:-quorate/node-local:latest}"
bin="$(command -v node || true)"
if [ -z "$bin" ]; then
  echo "node is not installed" >&2
  exit 1
fi
bin="$(readlink -f "$bin")"
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
root="$ctx/rootfs"
mkdir -p "$root/usr/local/bin" "$root/etc" "$root/tmp" "$root/home/node"
chmod 1777 "$root/tmp"
cp "$bin" "$root/usr/local/bin/node"
# Every shared object node links against, at the path the loader expects.
ldd "$bin" | grep -o '/[^ ]*' | while read -r lib; do
  [ -n "$lib" ] || continue
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
if [ -d /etc/ssl/certs ]; then
  mkdir -p "$root/etc/ssl"
  cp -rL /etc/ssl/certs "$root/etc/ssl/certs"
fi
printf 'root:x:0:0:root:/root:/sbin/nologin\nnode:x:1000:1000:node:/home/node:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nnode:x:1000:\n' >"$root/etc/group"
# glibc reads this for host name lookups (Docker provides /etc/hosts and /etc/resolv.conf).
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
chown -R 1000:1000 "$root/home/node"
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/local/bin:/usr/bin:/bin
CMD ["node"]
DOCKERFILE
docker build -q -t "$tag" "$ctx" >/dev/null
echo "built $tag from node $("$bin" --version) ($bin)"
