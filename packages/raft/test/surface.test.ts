import { describe, expect, it } from "vitest";
import * as raft from "../src/index.js";
import * as internal from "../src/internal.js";

describe("@quorate/raft's surfaces", () => {
  it("the public entry point exports what an application needs, and no internals", () => {
    expect(Object.keys(raft).sort()).toEqual([
      "BACKUP_FORMAT_VERSION",
      "BACKUP_MAGIC",
      "DEFAULT_MAX_PENDING_PROPOSALS",
      "DEFAULT_MAX_PENDING_READS",
      "DEFAULT_RAFT_OPTIONS",
      "DEFAULT_SNAPSHOT_THRESHOLD",
      "RaftNode",
      "SNAPSHOT_CHUNK_BYTES",
      "decodeBackup",
      "decodeConfig",
      "encodeBackup",
      "encodeConfig",
      "seedFromBackup",
    ]);
  });

  it("the internal entry point adds the machine, its rules, the log and the wire messages", () => {
    for (const name of Object.keys(raft)) expect(internal).toHaveProperty(name);
    expect(typeof internal.protocol.stepTerm).toBe("function");
    expect(typeof internal.protocol.stepLeader).toBe("function");
    expect(typeof internal.rule).toBe("function");
    expect(internal.raftMachine.id).toBeTypeOf("string");
    expect(typeof internal.packEntries).toBe("function");
    expect(Object.keys(internal.raftMessageSchemas).sort()).toEqual([
      "raft.append",
      "raft.append.resp",
      "raft.snapshot",
      "raft.snapshot.resp",
      "raft.timeout-now",
      "raft.vote",
      "raft.vote.resp",
    ]);
  });
});
