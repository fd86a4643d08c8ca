#!/usr/bin/env bash
# Prints the path of a nats-server 2.10 binary, taken from Debian 13 ("trixie")'s package and
# kept in a cache directory. The machine's own packages and apt configuration are left alone:
# apt reads a sources file of its own and keeps its lists and downloads under the cache.
# Usage: deploy/nats-local/fetch-nats-server.sh        (cache: $QUORATE_CACHE_DIR or ~/.cache/quorate)
# Bookworm's own package is 2.9.10, which lacks `jetstream { sync_interval: always }`.
set -euo pipefail
cache="${QUORATE_CACHE_DIR:-${HOME:-/root}/.cache/quorate}/nats-server-trixie"
bin="$cache/root/usr/sbin/nats-server"
if [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; then
  echo "$bin"
  exit 0
fi
mkdir -p "$cache/sources" "$cache/lists/partial" "$cache/archives/partial" "$cache/download"
cat >"$cache/sources/trixie.sources" <<'SOURCES'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
apt_options=(
  -o "Dir::Etc::SourceList=/dev/null"
  -o "Dir::Etc::SourceParts=$cache/sources"
  -o "Dir::State::Lists=$cache/lists"
  -o "Dir::Cache=$cache"
  -o "APT::Sandbox::User=root"
)
apt-get "${apt_options[@]}" update -qq >&2
(cd "$cache/download" && rm -f nats-server_*.deb && apt-get "${apt_options[@]}" download nats-server >&2)
rm -rf "$cache/root"
dpkg-deb -x "$cache"/download/nats-server_*.deb "$cache/root"
"$bin" --version >&2
echo "$bin"
