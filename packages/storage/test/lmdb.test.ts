import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { ErrorCode, isQuorateError, type QuorateError } from "@quorate/core";
import { open } from "lmdb";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { openLmdbStorage } from "../src/index.js";
import { describeRaftStorageContract } from "./contract.js";
import { entries } from "./reference-model.js";

const repoRoot = fileURLToPath(new URL("../../..", import.meta.url));
const crashWriter = fileURLToPath(new URL("./fixtures/crash-writer.mjs", import.meta.url));
const openErrors = fileURLToPath(new URL("./fixtures/open-errors.mjs", import.meta.url));

/**
 * Child processes run the built package, as a host process would. Once core is built, only this
 * package is rebuilt, against core's declarations, so that a core change in progress in the
 * working tree cannot break this suite.
 */
function buildStorage(): void {
  const coreBuilt = existsSync(join(repoRoot, "packages/core/dist/index.d.ts"));
  execFileSync("npx", ["tsc", coreBuilt ? "-p" : "-b", "packages/storage"], { cwd: repoRoot, stdio: "inherit" });
}

const tempDir = () => mkdtemp(join(tmpdir(), "quorate-storage-"));
const identity = { cluster: "c1", member: "m1" };

describeRaftStorageContract("lmdb", async () => {
  const dir = await tempDir();
  return {
    storage: await openLmdbStorage({ dir, ...identity }),
    reopen: () => openLmdbStorage({ dir, ...identity }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

async function expectStorageError(promise: Promise<unknown>, message: RegExp): Promise<void> {
  await expect(promise).rejects.toSatisfy(
    (err) => isQuorateError(err, ErrorCode.Storage) && message.test((err as QuorateError).message),
  );
}

describe("LMDB data directory", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await tempDir();
  });
  afterEach(async () => {
    await chmod(dir, 0o700);
    await rm(dir, { recursive: true, force: true });
  });

  it("creates a missing directory, with parents", async () => {
    const nested = join(dir, "a", "b.with.dots");
    const storage = await openLmdbStorage({ dir: nested, ...identity });
    await storage.load();
    await storage.write({ hardState: { term: 1, vote: null, commit: 0 } });
    await storage.close();
    const reopened = await openLmdbStorage({ dir: nested, ...identity });
    expect((await reopened.load()).hardState.term).toBe(1);
    await reopened.close();
  });

  it("belongs to the cluster and member that first opened it, and another open writes nothing", async () => {
    const storage = await openLmdbStorage({ dir, ...identity });
    await storage.load();
    await storage.write({ hardState: { term: 2, vote: "m1", commit: 0 }, entries: entries(1, 3, 2) });
    await storage.close();
    const before = await readFile(join(dir, "data.mdb"));

    await expectStorageError(
      openLmdbStorage({ dir, cluster: "c2", member: "m1" }),
      /^data directory .* belongs to cluster c1 member m1, not cluster c2 member m1$/,
    );
    await expectStorageError(
      openLmdbStorage({ dir, cluster: "c1", member: "m2" }),
      /belongs to cluster c1 member m1, not cluster c1 member m2/,
    );
    expect((await readFile(join(dir, "data.mdb"))).equals(before)).toBe(true);

    const reopened = await openLmdbStorage({ dir, ...identity });
    expect((await reopened.load()).entries).toEqual(entries(1, 3, 2));
    await reopened.close();
  });

  it("refuses a store of another format version", async () => {
    await (await openLmdbStorage({ dir, ...identity })).close();
    const env = open({ path: dir, noSubdir: false, maxDbs: 3 });
    await env.openDB({ name: "meta" }).put("identity", { ...identity, formatVersion: 99 });
    await env.close();
    await expectStorageError(
      openLmdbStorage({ dir, ...identity }),
      /uses storage format 99; this version reads format 1/,
    );
  });

  it("fails clearly on a path that is a file, or lies under one, and writes nothing", async () => {
    const file = join(dir, "not-a-dir");
    await writeFile(file, "keep me");
    await expectStorageError(
      openLmdbStorage({ dir: file, ...identity }),
      /data directory .*not-a-dir is not a directory/,
    );
    await expectStorageError(openLmdbStorage({ dir: join(file, "sub"), ...identity }), /not-a-dir\/sub/);
    expect(await readFile(file, "utf8")).toBe("keep me");
  });

  // Permission bits do not stop root, so as root the opens run in a child as user nobody.
  it("fails clearly on a directory without permission, and writes nothing", async () => {
    await chmod(dir, 0o755);
    const locked = join(dir, "locked");
    await mkdir(locked, { mode: 0o555 });
    await chmod(locked, 0o555);
    const denied = join(dir, "denied");
    await mkdir(denied, { mode: 0o555 });
    await chmod(denied, 0o555);
    const targets = [locked, join(denied, "sub")];
    let results: ({ code: string; message: string } | null)[];
    if (process.getuid?.() === 0) {
      buildStorage();
      // The test's own Node may sit in a directory user nobody cannot enter (a private temp dir):
      // then the machine's `node` on PATH runs the child.
      const runAsNobody = (node: string) =>
        execFileSync(node, [openErrors, ...targets], { uid: 65534, gid: 65534, env: process.env });
      let out: Buffer;
      try {
        out = runAsNobody(process.execPath);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EACCES") throw err;
        out = runAsNobody("node");
      }
      results = JSON.parse(out.toString());
    } else {
      results = [];
      for (const target of targets) {
        const err = await openLmdbStorage({ dir: target, ...identity }).then(
          () => null,
          (e: QuorateError) => e,
        );
        results.push(err === null ? null : { code: err.code, message: err.message });
      }
    }
    expect(results[0]).toMatchObject({
      code: ErrorCode.Storage,
      message: expect.stringMatching(/is not readable and writable/),
    });
    expect(results[1]).toMatchObject({
      code: ErrorCode.Storage,
      message: expect.stringMatching(/cannot create data directory/),
    });
    expect(existsSync(join(locked, "data.mdb"))).toBe(false);
    expect(existsSync(join(denied, "sub"))).toBe(false);
  });

  it("is opened by one storage at a time within a process", async () => {
    const storage = await openLmdbStorage({ dir, ...identity });
    await expectStorageError(openLmdbStorage({ dir, ...identity }), /already open in this process/);
    await storage.close();
    await (await openLmdbStorage({ dir, ...identity })).close();
  });
});

describe("LMDB durability across SIGKILL", () => {
  beforeAll(buildStorage, 120_000);

  /** Runs the crash writer until it has acknowledged `acks` writes, then kills it with SIGKILL. */
  async function killAfterAcks(dir: string, acks: number): Promise<{ lastIndex: number; term: number }[]> {
    const child: ChildProcess = spawn(process.execPath, [crashWriter, dir], { stdio: ["ignore", "pipe", "inherit"] });
    const acked: { lastIndex: number; term: number }[] = [];
    const exited = new Promise((resolve) => child.once("exit", resolve));
    for await (const line of createInterface({ input: child.stdout! })) {
      const [lastIndex, term] = line.split(" ").map(Number);
      acked.push({ lastIndex: lastIndex!, term: term! });
      if (acked.length === acks) child.kill("SIGKILL");
    }
    await exited;
    return acked;
  }

  it("keeps every acknowledged write", async () => {
    const dir = await tempDir();
    try {
      let acknowledged = { lastIndex: 0, term: 0 };
      for (const acks of [150, 40, 300]) {
        const acked = await killAfterAcks(dir, acks);
        expect(acked.length).toBeGreaterThanOrEqual(acks);
        acknowledged = acked.at(-1)!;
        const storage = await openLmdbStorage({ dir, cluster: "crash", member: "writer" });
        const state = await storage.load();
        await storage.close();
        expect(state.hardState.term).toBeGreaterThanOrEqual(acknowledged.term);
        expect(state.entries.length).toBeGreaterThanOrEqual(acknowledged.lastIndex);
        state.entries.forEach((e, i) => {
          expect(e.index).toBe(i + 1);
          expect(new TextDecoder().decode(e.data)).toBe(`entry ${e.index}`);
        });
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
