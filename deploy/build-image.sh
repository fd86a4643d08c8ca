#!/usr/bin/env bash
# Builds the quorate image from this checkout: compiles the workspace, runs `pnpm deploy --prod`
# for the quorate package into a temporary context, and builds deploy/Dockerfile there.
# Usage: [BASE_IMAGE=<image>] deploy/build-image.sh [tag]   (default tag: quorate/quorate:latest)
# Without Docker Hub: deploy/node-local/build.sh && BASE_IMAGE=quorate/node-local:latest deploy/build-image.sh
set -euo pipefail
tag="${1:-quorate/quorate:latest}"
base="${BASE_IMAGE:-node:20-bookworm-slim}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
cd "$repo"
pnpm build >/dev/null
# --prefer-offline: the store already holds every dependency after `pnpm install`.
pnpm --filter quorate deploy --prod --prefer-offline "$ctx/app" >/dev/null
cp deploy/Dockerfile deploy/image/prune.mjs "$ctx/"
docker build -q --build-arg "BASE_IMAGE=$base" -t "$tag" "$ctx" >/dev/null
# The build stage's image is left untagged; only the runtime image is kept.
docker image prune -f --filter label=dev.quorate.image-stage=build >/dev/null
echo "built $tag on $base ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
