import { ErrorCode, isQuorateError, QuorateError } from "@quorate/core";
import { MemoryRaftStorage } from "@quorate/storage";
import { MemoryDisk } from "@quorate/storage/internal";
import { afterEach, describe, expect, it } from "vitest";
import {
  BACKUP_FORMAT_VERSION,
  decodeBackup,
  decodeConfig,
  encodeBackup,
  type RaftBackup,
  seedFromBackup,
} from "../src/index.js";
import { encode, LocalCluster } from "./cluster.js";

const clusters: LocalCluster[] = [];
afterEach(async () => {
  for (const c of clusters.splice(0)) await c.stopAll();
});

const sample: RaftBackup = {
  cluster: "prod",
  group: "kv",
  index: 1234,
  term: 7,
  config: { voters: ["a", "b", "c"], learners: ["d"] },
  createdAtMs: 1_700_000_000_000,
  data: Uint8Array.from({ length: 5000 }, (_, i) => i % 251),
};

/** The Corrupt error decoding `file` throws; fails the test when it decodes. */
function refusal(file: Uint8Array): QuorateError {
  try {
    decodeBackup(file, "backup.qsnap");
  } catch (err) {
    if (err instanceof QuorateError) return err;
    throw err;
  }
  throw new Error("a damaged backup decoded");
}

describe("backup file format", () => {
  it("round-trips index, term, configuration and state", () => {
    const file = encodeBackup(sample);
    expect(Buffer.from(file.subarray(0, 8)).toString("latin1")).toBe("\x89QUORATE");
    expect(new DataView(file.buffer).getUint32(8)).toBe(BACKUP_FORMAT_VERSION);
    expect(decodeBackup(file)).toEqual(sample);
  });

  it("refuses a file truncated anywhere, with QUORATE_CORRUPT", () => {
    const file = encodeBackup(sample);
    for (const length of [0, 7, 15, 20, 60, file.length - 5000, file.length - 33, file.length - 1]) {
      const err = refusal(file.subarray(0, length));
      expect(err.code).toBe(ErrorCode.Corrupt);
      expect(err.message).toContain("backup.qsnap");
    }
    expect(refusal(file.subarray(0, file.length - 1)).message).toContain("truncated");
  });

  it("refuses a flipped bit in the state by its checksum", () => {
    const file = encodeBackup(sample);
    file[file.length - 100] = (file[file.length - 100] as number) ^ 0x01;
    const err = refusal(file);
    expect(err.code).toBe(ErrorCode.Corrupt);
    expect(err.message).toContain("checksum");
  });

  it("refuses another file, a newer format and trailing bytes", () => {
    const file = encodeBackup(sample);
    expect(refusal(new TextEncoder().encode("not a backup at all, just some text in a file")).message).toContain(
      "magic",
    );
    const newer = file.slice();
    new DataView(newer.buffer).setUint32(8, BACKUP_FORMAT_VERSION + 1);
    expect(refusal(newer).message).toContain(`format version ${BACKUP_FORMAT_VERSION + 1}`);
    const longer = new Uint8Array(file.length + 3);
    longer.set(file);
    expect(refusal(longer).code).toBe(ErrorCode.Corrupt);
  });
});

describe("backup and restore of a Raft group", () => {
  it("a follower refuses to take a backup: only the leader's is consistent", async () => {
    const source = new LocalCluster(["a", "b", "c"]);
    clusters.push(source);
    await source.startAll();
    const leader = await source.leader();
    const follower = [...source.nodes.values()].find((n) => n !== leader);
    const err = await follower?.backupSnapshot().catch((e: unknown) => e);
    expect(isQuorateError(err, ErrorCode.NotLeader)).toBe(true);
  });

  it("a new cluster of other members starts from the leader's backup and goes on from its index", async () => {
    const source = new LocalCluster(["a", "b", "c"]);
    clusters.push(source);
    await source.startAll();
    const leader = await source.leader();
    for (const item of ["x", "y", "z"]) await leader.propose(encode(item));
    const snapshot = await leader.backupSnapshot();
    // Every acknowledged write is in it, at the index the leader applied.
    expect(snapshot.index).toBe(leader.appliedIndex);
    expect(snapshot.term).toBe(leader.status().term);
    expect(decodeConfig(snapshot.config)).toEqual({ voters: ["a", "b", "c"], learners: [] });
    const file = encodeBackup({
      cluster: "test",
      group: "kv",
      index: snapshot.index,
      term: snapshot.term,
      config: decodeConfig(snapshot.config),
      createdAtMs: 0,
      data: snapshot.data,
    });
    await source.stopAll();

    const backup = decodeBackup(file);
    const restored = new LocalCluster(["p", "q", "r"]);
    clusters.push(restored);
    for (const [id, disk] of restored.disks) {
      const storage = new MemoryRaftStorage(disk);
      const seeded = await seedFromBackup(storage, backup, id, ["p", "q", "r"]);
      expect(seeded).toEqual({
        index: backup.index,
        term: backup.term,
        config: { voters: ["p", "q", "r"], learners: [] },
      });
      await storage.close();
    }
    await restored.startAll();
    const newLeader = await restored.leader();
    expect(newLeader.membership().voters).toEqual(["p", "q", "r"]);
    await newLeader.propose(encode("after"));
    await restored.waitFor(() => [...restored.machines.values()].every((m) => m.items.length === 4));
    for (const m of restored.machines.values()) expect(m.items).toEqual(["x", "y", "z", "after"]);
    expect(newLeader.appliedIndex).toBeGreaterThan(backup.index);
  });

  it("refuses to seed a store that holds a member's state, or peers without the member", async () => {
    const disk = new MemoryDisk();
    const storage = new MemoryRaftStorage(disk);
    await expect(seedFromBackup(storage, decodeBackup(encodeBackup(sample)), "z", ["a", "b"])).rejects.toMatchObject({
      code: ErrorCode.Config,
    });
    await seedFromBackup(storage, sample, "a", ["a", "b"]);
    await storage.close();
    const again = new MemoryRaftStorage(disk);
    await expect(seedFromBackup(again, sample, "a", ["a", "b"])).rejects.toMatchObject({ code: ErrorCode.Storage });
    await again.close();
  });
});
