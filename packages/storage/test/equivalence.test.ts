import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MemoryDisk, MemoryRaftStorage, openLmdbStorage, type RaftState, type RaftStorage } from "../src/internal.js";
import { type Operation, operation, ReferenceModel, toWrite } from "./reference-model.js";

/**
 * Applies the operations to `storage`, either awaiting each write or issuing them all at once,
 * and returns the model of what they should leave behind.
 */
async function run(storage: RaftStorage, operations: Operation[], pipelined: boolean): Promise<RaftState> {
  await storage.load();
  const model = new ReferenceModel();
  const issued: Promise<void>[] = [];
  for (const op of operations) {
    const write = toWrite(model, op);
    if (write === null) continue;
    let done: Promise<void>;
    if ("compact" in write) done = storage.compact(write.compact);
    else {
      done = storage.write(write);
      model.apply(write);
    }
    if (pipelined) issued.push(done);
    else await done;
  }
  await Promise.all(issued);
  await storage.close();
  return model.state;
}

describe("both implementations match the reference model", () => {
  it("after random appends, truncations, hard states, snapshots and compactions, and a reopen", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(operation, { minLength: 1, maxLength: 30 }),
        fc.boolean(),
        async (operations, pipelined) => {
          const disk = new MemoryDisk();
          const expected = await run(new MemoryRaftStorage(disk), operations, pipelined);
          expect(await new MemoryRaftStorage(disk).load()).toEqual(expected);

          const dir = await mkdtemp(join(tmpdir(), "quorate-storage-model-"));
          try {
            const identity = { dir, cluster: "model", member: "m1" };
            await run(await openLmdbStorage(identity), operations, pipelined);
            const reopened = await openLmdbStorage(identity);
            expect(await reopened.load()).toEqual(expected);
            await reopened.close();
          } finally {
            await rm(dir, { recursive: true, force: true });
          }
        },
      ),
      { numRuns: 60 },
    );
  }, 60_000);
});
