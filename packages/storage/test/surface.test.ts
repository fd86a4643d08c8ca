import { describe, expect, it } from "vitest";
import * as storage from "../src/index.js";
import * as internal from "../src/internal.js";

describe("@quorate/storage's surfaces", () => {
  it("the public entry point exports the LMDB and memory stores, and no memory disks", () => {
    expect(Object.keys(storage).sort()).toEqual([
      "LmdbAcceptorStorage",
      "MemoryAcceptorStorage",
      "MemoryRaftStorage",
      "createMemoryAcceptorStorage",
      "createMemoryStorage",
      "openLmdbAcceptorStorage",
      "openLmdbStorage",
    ]);
  });

  it("the internal entry point adds the memory disks a crash test reopens a store on", async () => {
    for (const name of Object.keys(storage)) expect(internal).toHaveProperty(name);
    expect(
      Object.keys(internal)
        .filter((name) => !(name in storage))
        .sort(),
    ).toEqual(["MemoryAcceptorDisk", "MemoryDisk"]);
    const disk = new internal.MemoryDisk();
    const store = new internal.MemoryRaftStorage(disk);
    await store.load();
    await store.write({ hardState: { term: 2, vote: null, commit: 0 } });
    await store.close();
    expect((await new internal.MemoryRaftStorage(disk).load()).hardState.term).toBe(2);
  });
});
