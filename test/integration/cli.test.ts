import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI } from "../harness/members.js";

const run = promisify(execFile);

/** `quorate start` as a user runs it: it starts its own nats-server when none answers. */
describe("quorate start, kv and status end to end", () => {
  let start: ChildProcess;
  let output = "";
  let natsUrl = "";
  const dataDir = mkdtempSync(join(tmpdir(), "quorate-start-"));

  beforeAll(async () => {
    // Port 1 never answers, so start brings up a nats-server of its own on a free port.
    start = spawn(
      process.execPath,
      [CLI, "start", "--cluster", "itstart", "--data", dataDir, "--nats", "nats://127.0.0.1:1"],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    start.stdout?.on("data", (c: Buffer) => {
      output += c.toString();
    });
    start.stderr?.on("data", (c: Buffer) => {
      output += c.toString();
    });
    const deadline = Date.now() + 60_000;
    while (!output.includes("is up") && Date.now() < deadline && start.exitCode === null) {
      await new Promise((r) => setTimeout(r, 100));
    }
    natsUrl = /Started .* at (nats:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1] ?? "";
  });

  afterAll(() => {
    if (start.exitCode === null) start.kill("SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("brings up three members and prints how to use them", () => {
    expect(output, output).toContain("Quorate cluster 'itstart' is up: 3 members");
    expect(output).toContain("pnpm quorate kv put");
    expect(natsUrl).not.toBe("");
  });

  it("kv put/get/cas/del and status work against it, with the documented exit codes", async () => {
    const q = (...args: string[]) => run(process.execPath, [CLI, ...args, "--cluster", "itstart", "--nats", natsUrl]);
    expect((await q("kv", "put", "greeting", "hello")).stdout).toBe("OK\n");
    expect((await q("kv", "get", "greeting")).stdout).toBe("hello\n");
    expect(JSON.parse((await q("kv", "get", "greeting", "--json")).stdout)).toEqual({
      key: "greeting",
      found: true,
      value: "hello",
      revision: expect.any(Number),
      createRevision: expect.any(Number),
      version: 1,
    });
    const failedCas = await q("kv", "cas", "greeting", "nope", "x").catch((e: { code: number; stdout: string }) => e);
    expect(failedCas).toMatchObject({ code: 1, stdout: "condition failed\n" });
    expect((await q("kv", "cas", "greeting", "hello", "bye")).stdout).toBe("OK\n");
    expect((await q("kv", "del", "greeting")).stdout).toBe("OK\n");
    const missing = await q("kv", "get", "greeting").catch((e: { code: number; stderr: string }) => e);
    expect(missing).toMatchObject({ code: 1 });
    const status = JSON.parse((await q("status", "--json")).stdout) as { members: { id: string; role: string }[] };
    expect(status.members.map((m) => m.id)).toEqual(["n1", "n2", "n3"]);
    expect(status.members.filter((m) => m.role === "leader")).toHaveLength(1);
    const table = (await q("status")).stdout;
    expect(table).toMatch(/^ID\s+ROLE\s+TERM\s+LEADER\s+COMMIT\s+APPLIED\s+LAST/);
  });

  it("leader transfer moves leadership to the named member", async () => {
    const q = (...args: string[]) => run(process.execPath, [CLI, ...args, "--cluster", "itstart", "--nats", natsUrl]);
    const before = JSON.parse((await q("status", "--json")).stdout) as { members: { id: string; role: string }[] };
    const leader = before.members.find((m) => m.role === "leader")?.id;
    const target = before.members.find((m) => m.role !== "leader")?.id as string;
    const moved = JSON.parse((await q("leader", "transfer", "--to", target, "--json")).stdout);
    expect(moved).toEqual({ from: leader, to: target });
    const after = JSON.parse((await q("status", "--json")).stdout) as { members: { id: string; role: string }[] };
    expect(after.members.find((m) => m.role === "leader")?.id).toBe(target);
    const self = await q("leader", "transfer", "--to", target).catch((e: { code: number; stderr: string }) => e);
    expect(self).toMatchObject({ code: 2 });
    expect((self as { stderr: string }).stderr).toContain("is already the leader");
  });

  it("stops everything on Ctrl-C and exits 0", async () => {
    const exited = new Promise<number | null>((resolve) => start.once("exit", (code) => resolve(code)));
    start.kill("SIGINT");
    expect(await exited).toBe(0);
    expect(output).toContain("Stopped.");
    const unreachable = await run(process.execPath, [CLI, "status", "--nats", natsUrl, "--cluster", "itstart"]).catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect(unreachable).toMatchObject({ code: 2 });
  });
});
