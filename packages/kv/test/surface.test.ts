import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import * as kv from "../src/index.js";
import * as internal from "../src/internal.js";
import * as kvNats from "../src/nats.js";

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), "../src");

/** Every module specifier a source file and the package files it imports import, transitively. */
function importedModules(entry: string): Set<string> {
  const seen = new Set<string>();
  const modules = new Set<string>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    const source = readFileSync(file, "utf8");
    for (const [, specifier] of source.matchAll(/^(?:import|export)[^;]*?from "([^"]+)";/gms)) {
      if (specifier === undefined) continue;
      if (specifier.startsWith(".")) visit(resolve(dirname(file), specifier.replace(/\.js$/, ".ts")));
      else modules.add(specifier);
    }
  };
  visit(resolve(SRC, entry));
  return modules;
}

describe("@quorate/kv's surfaces", () => {
  it("the main entry point is the state machine and its commands, and loads neither NATS nor the service", () => {
    expect(Object.keys(kv).sort()).toEqual([
      "DEFAULT_WATCH_WINDOW",
      "KvStateMachine",
      "MAX_CHANGE_EVENTS",
      "MAX_KEY_LENGTH",
      "MAX_LEASES",
      "MAX_LEASE_KEYS",
      "MAX_LEASE_TTL_MS",
      "MAX_TXN_OPS",
      "MIN_LEASE_TTL_MS",
      "decodeKvResult",
      "encodeKvCommand",
      "startLeaseTicker",
    ]);
    expect([...importedModules("index.ts")].sort()).toEqual(["@quorate/core", "@quorate/core/internal"]);
  });

  it("the nats entry point is the service, the client and their protocol", () => {
    for (const name of [
      "createKvService",
      "KvClient",
      "KvLease",
      "KvWatch",
      "KvCompactedError",
      "watchSubject",
      "ShardedKvClient",
      "kvGroupOfKey",
      "kvShardGroups",
    ]) {
      expect(kvNats).toHaveProperty(name);
    }
    for (const name of Object.keys(kv)) expect(kvNats).not.toHaveProperty(name);
    expect(importedModules("nats.ts")).toContain("@nats-io/transport-node");
  });

  it("the internal entry point adds both public ones and the validators of commands, requests, replies and changes", () => {
    for (const name of [...Object.keys(kv), ...Object.keys(kvNats)]) expect(internal).toHaveProperty(name);
    expect(
      Object.keys(internal)
        .filter((name) => !(name in kv) && !(name in kvNats))
        .sort(),
    ).toEqual([
      "kvChange",
      "kvCommand",
      "kvKey",
      "kvLeaseInfo",
      "kvReply",
      "kvRequest",
      "kvValue",
      "kvWatchBatch",
      "leaseId",
      "leaseTtl",
    ]);
    expect(internal.kvCommand({ op: "put", key: "k", value: "v" })).toBe(true);
    expect(internal.kvCommand({ op: "put", key: "", value: "v" })).toBe(false);
  });
});
