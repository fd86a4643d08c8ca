import { readFileSync } from "node:fs";

/**
 * The version of the `quorate` package, as services report it in `$SRV` responses. Read from
 * the package's own package.json (two levels up from both src/service and dist/service), so a
 * release bumps one number. NATS micro clients require a semantic version: anything unreadable
 * is reported as 0.0.0 rather than failing a member's start.
 */
export const QUORATE_VERSION: string = readVersion();

function readVersion(): string {
  try {
    const manifest: unknown = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"));
    if (typeof manifest === "object" && manifest !== null && "version" in manifest) {
      const { version } = manifest;
      if (typeof version === "string" && /^\d+\.\d+\.\d+/.test(version)) return version;
    }
  } catch {
    // Fall through: a missing manifest must not stop a member.
  }
  return "0.0.0";
}
