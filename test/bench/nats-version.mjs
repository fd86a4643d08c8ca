// Which nats-server features a benchmark can use. No imports, so unit tests load it without a build.

/** `jetstream { sync_interval: always }` (fsync before every acknowledgement) arrived in nats-server 2.10.0. */
export const SYNC_ALWAYS_SINCE = "2.10.0";

/**
 * Whether the nats-server version in `found` (as `nats-server --version` or its log prints it:
 * "nats-server: v2.9.10", "v2.10.4") is at least `needed`. Pre-release suffixes are ignored; text
 * without a version is not new enough, so a feature is never assumed.
 */
export function versionAtLeast(found, needed) {
  const parse = (text) => /(\d+)\.(\d+)\.(\d+)/.exec(text)?.slice(1, 4).map(Number);
  const have = parse(found);
  const want = parse(needed);
  if (have === undefined || want === undefined) return false;
  const differs = have.findIndex((part, i) => part !== want[i]);
  return differs === -1 || have[differs] > want[differs];
}
