import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KvEntry } from "../../packages/kv/src/index.js";
import { KvClient } from "../../packages/kv/src/nats.js";
import { connectNats, type NatsConnection } from "../../packages/transport-nats/src/index.js";
import { cliProcess, type MemberProcess, memberSet, quorateCommand, waitForCluster } from "../harness/members.js";
import { type NatsServer, startNats } from "../harness/nats.js";

/**
 * Backup and restore as an operator does it, members as `quorate node` processes over real NATS:
 * write keys, `quorate snapshot save`, wipe the cluster, `quorate snapshot restore` into the data
 * directories of a new 3-member cluster, start it, and find every key with its revisions and a
 * cluster that takes writes. A damaged or truncated backup is refused and writes nothing; a Paxos
 * cluster is refused (backups are Raft-only).
 */

const CLUSTER = "itbackup";
const PAXOS_CLUSTER = "itbackuppaxos";
/** Small, so the leader has compacted its log well before the backup. */
const SNAPSHOT_THRESHOLD = "100";
const KEYS = 150;
/** Large values, so the backup is read from the leader in several chunks. */
const LARGE_VALUES = 4;
const LARGE_VALUE_BYTES = 200 * 1024;

const largeKeys = () => Array.from({ length: LARGE_VALUES }, (_, i) => `large/${i}`);

interface Failed {
  readonly code: number;
  readonly stderr: string;
}

describe("quorate snapshot save and restore, over real NATS", () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let root: string;
  let backupFile: string;
  const processes: { cleanup(): Promise<void> }[] = [];
  const restored: MemberProcess[] = [];
  const written = new Map<string, KvEntry>();
  let saved: { saved: string; index: number; term: number; voters: string[] };

  const quorate = (...args: string[]) => quorateCommand(CLUSTER, nats)(...args);
  const failure = (promise: Promise<unknown>): Promise<Failed> =>
    promise.then(
      () => ({ code: 0, stderr: "" }),
      (e: Failed) => e,
    );

  beforeAll(async () => {
    nats = await startNats();
    nc = await connectNats({ ...nats.connectOptions(), name: "backup-test" });
    root = mkdtempSync(join(tmpdir(), "quorate-backup-"));
    backupFile = join(root, "cluster.qbak");
  });

  afterAll(async () => {
    await Promise.all(restored.map((m) => m.kill()));
    for (const p of processes) await p.cleanup();
    await nc?.close();
    await nats?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it("saves a consistent backup of a written cluster from its leader", async () => {
    const source = memberSet({
      cluster: CLUSTER,
      ids: ["n1", "n2", "n3"],
      natsUrl: nats.url,
      user: nats.user,
      pass: nats.pass,
      protocolArgs: ["--protocol", "raft", "--snapshot-threshold", SNAPSHOT_THRESHOLD],
    });
    processes.push(source);
    for (const m of source.members) m.start();
    await waitForCluster(nc, CLUSTER, (s) => s.length === 3 && s.some((m) => m.role === "leader"));
    const client = await KvClient.connect({ nats: nats.connectOptions(), cluster: CLUSTER, timeoutMs: 20_000 });
    try {
      // Creates, updates (version 2, 3) and deletes, so revisions, create revisions and versions all differ.
      for (let i = 0; i < KEYS; i++) await client.put(`key/${i}`, `value ${i}`);
      for (let i = 0; i < KEYS; i += 3) await client.put(`key/${i}`, `value ${i} again`);
      for (let i = 0; i < KEYS; i += 9) await client.put(`key/${i}`, new Uint8Array([i % 256, 0, 255]));
      for (let i = 1; i < KEYS; i += 10) await client.delete(`key/${i}`);
      for (let i = 0; i < LARGE_VALUES; i++) {
        await client.put(`large/${i}`, new Uint8Array(LARGE_VALUE_BYTES).fill(i + 1));
      }
      for (const key of [...Array.from({ length: KEYS }, (_, i) => `key/${i}`), ...largeKeys()]) {
        const entry = await client.entry(key);
        if (entry !== null) written.set(key, entry);
      }
    } finally {
      await client.close();
    }
    expect(written.size).toBe(KEYS - KEYS / 10 + LARGE_VALUES);

    saved = JSON.parse(await quorate("snapshot", "save", backupFile, "--json"));
    expect(saved.saved).toBe(backupFile);
    expect(saved.voters.sort()).toEqual(["n1", "n2", "n3"]);
    const newest = Math.max(...[...written.values()].map((e) => e.revision));
    expect(saved.index).toBeGreaterThanOrEqual(newest);
    const file = readFileSync(backupFile);
    expect(file.subarray(0, 8).toString("latin1")).toBe("\x89QUORATE");
    expect(file.length).toBeGreaterThan(LARGE_VALUES * LARGE_VALUE_BYTES);
    // The whole cluster goes, data and all.
    await source.cleanup();
  });

  it("refuses a damaged or truncated backup with QUORATE_CORRUPT and writes nothing", async () => {
    const file = readFileSync(backupFile);
    const damaged = Buffer.from(file);
    const middle = Math.floor(damaged.length / 2);
    damaged[middle] = (damaged[middle] as number) ^ 0x40;
    const cases = {
      damaged: [damaged, "checksum"],
      truncated: [file.subarray(0, file.length - 1000), "truncated"],
      empty: [Buffer.alloc(0), "truncated"],
    } as const;
    for (const [name, [bytes, reason]] of Object.entries(cases)) {
      const bad = join(root, `${name}.qbak`);
      writeFileSync(bad, bytes);
      const dataDir = join(root, `bad-${name}`);
      const refused = await failure(
        quorate("snapshot", "restore", bad, "--data", dataDir, "--id", "r1", "--peers", "r1,r2,r3"),
      );
      expect(refused.code, name).toBe(2);
      expect(refused.stderr, name).toContain("QUORATE_CORRUPT");
      expect(refused.stderr, name).toContain(reason);
      expect(existsSync(dataDir), name).toBe(false);
    }
  });

  it("restores into a new 3-member cluster: every key and revision back, and it takes writes", async () => {
    const ids = ["r1", "r2", "r3"];
    for (const id of ids) {
      const dataDir = join(root, id);
      const out = JSON.parse(
        await quorate(
          "snapshot",
          "restore",
          backupFile,
          "--data",
          dataDir,
          "--id",
          id,
          "--peers",
          ids.join(),
          "--json",
        ),
      );
      expect(out).toMatchObject({ restored: dataDir, index: saved.index, term: saved.term, voters: ids });
      const member = cliProcess(id, dataDir, [
        "node",
        ...["--protocol", "raft", "--cluster", CLUSTER, "--id", id, "--peers", ids.join(), "--data", dataDir],
        ...["--nats", nats.url, "--user", nats.user, "--password", nats.pass, "--log-level", "info"],
      ]);
      restored.push(member);
    }
    // A data directory already seeded is never overwritten.
    const again = await failure(
      quorate("snapshot", "restore", backupFile, "--data", join(root, "r1"), "--id", "r1", "--peers", ids.join()),
    );
    expect(again.stderr).toContain("is not empty");

    for (const m of restored) m.start();
    const statuses = await waitForCluster(
      nc,
      CLUSTER,
      (s) => s.length === 3 && s.some((m) => m.role === "leader") && s.every((m) => m.appliedIndex >= saved.index),
    );
    expect(statuses.map((m) => m.id)).toEqual(ids);
    expect(statuses.every((m) => [...(m.voters ?? [])].sort().join() === ids.join())).toBe(true);

    const client = await KvClient.connect({ nats: nats.connectOptions(), cluster: CLUSTER, timeoutMs: 20_000 });
    try {
      for (const key of [...Array.from({ length: KEYS }, (_, i) => `key/${i}`), ...largeKeys()]) {
        expect(await client.entry(key), key).toEqual(written.get(key) ?? null);
      }
      const revision = await client.put("key/after-restore", "new");
      expect(revision).toBeGreaterThan(saved.index);
      expect(await client.get("key/after-restore")).toBe("new");
      const updated = await client.update("key/0", "updated after restore", (written.get("key/0") as KvEntry).revision);
      expect(updated).toBeGreaterThan(revision);
    } finally {
      await client.close();
    }
    const digests = await waitForCluster(
      nc,
      CLUSTER,
      (s) => s.length === 3 && new Set(s.map((m) => m.stateDigest)).size === 1,
    );
    expect(digests).toHaveLength(3);
  });

  it("refuses to back up a Paxos cluster, saying that backups are Raft-only", async () => {
    const paxos = memberSet({
      cluster: PAXOS_CLUSTER,
      ids: ["p1"],
      natsUrl: nats.url,
      user: nats.user,
      pass: nats.pass,
      protocolArgs: ["--protocol", "paxos"],
    });
    processes.push(paxos);
    for (const m of paxos.members) m.start();
    await waitForCluster(nc, PAXOS_CLUSTER, (s) => s.length > 0);
    const file = join(root, "paxos.qbak");
    const refused = await failure(quorateCommand(PAXOS_CLUSTER, nats)("snapshot", "save", file));
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("QUORATE_CONFIG");
    expect(refused.stderr).toContain("Raft clusters only");
    expect(existsSync(file)).toBe(false);
  });
});
