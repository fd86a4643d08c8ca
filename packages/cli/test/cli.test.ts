import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Exit, main } from "../src/index.js";
import { capture } from "./helpers.js";

describe("quorate CLI input validation", () => {
  it("prints help and exits non-zero without a command", async () => {
    const c = capture();
    expect(await main([], c.io)).toBe(Exit.Error);
    expect(c.out()).toContain("quorate start");
  });

  it("rejects an unknown command", async () => {
    const c = capture();
    expect(await main(["frobnicate"], c.io)).toBe(Exit.Error);
    expect(c.err()).toContain("unknown command 'frobnicate'");
  });

  it("rejects unknown flags with the usage line", async () => {
    const c = capture();
    expect(await main(["node", "--bogus", "1"], c.io)).toBe(Exit.Error);
    expect(c.err()).toMatch(/QUORATE_CONFIG.*bogus/s);
    expect(c.err()).toContain("usage: quorate node");
  });

  it("rejects a malformed id outside the peers, writing nothing", async () => {
    const dir = join(mkdtempSync(join(tmpdir(), "quorate-cli-")), "data");
    const c = capture();
    const code = await main(["node", "--cluster", "c", "--id", "n.9", "--peers", "n1,n2,n3", "--data", dir], c.io);
    expect(code).toBe(Exit.Error);
    expect(c.err()).toContain("QUORATE_CONFIG");
    expect(c.err()).toContain("n.9");
    expect(existsSync(dir)).toBe(false);
  });

  it("rejects duplicate peers", async () => {
    const c = capture();
    expect(await main(["node", "--id", "n1", "--peers", "n1,n1", "--data", "x"], c.io)).toBe(Exit.Error);
    expect(c.err()).toContain("duplicate member id 'n1'");
  });

  it("fails with Unreachable when NATS cannot be reached, writing nothing", async () => {
    const dir = join(mkdtempSync(join(tmpdir(), "quorate-cli-")), "data");
    const c = capture();
    // A member waits for NATS by default; --nats-wait-ms 0 asks it to fail at once instead.
    const code = await main(
      [
        ...["node", "--cluster", "c", "--id", "n1", "--peers", "n1", "--data", dir],
        ...["--nats", "nats://127.0.0.1:1", "--nats-wait-ms", "0"],
      ],
      c.io,
    );
    expect(code).toBe(Exit.Error);
    expect(c.err()).toContain("QUORATE_UNREACHABLE");
    expect(existsSync(dir)).toBe(false);
  });

  it("snapshot restore refuses a file that is not a whole backup, and a missing --peers, writing nothing", async () => {
    const root = mkdtempSync(join(tmpdir(), "quorate-cli-"));
    const file = join(root, "backup.qbak");
    writeFileSync(file, "\x89QUORATE and then nothing of use");
    const dir = join(root, "data");
    const c = capture();
    expect(await main(["snapshot", "restore", file, "--data", dir, "--id", "n1", "--peers", "n1,n2"], c.io)).toBe(
      Exit.Error,
    );
    expect(c.err()).toContain("QUORATE_CORRUPT");
    expect(c.err()).toContain(file);
    const noPeers = capture();
    expect(await main(["snapshot", "restore", file, "--data", dir, "--id", "n1"], noPeers.io)).toBe(Exit.Error);
    expect(noPeers.err()).toContain("--peers is required");
    expect(existsSync(dir)).toBe(false);
  });

  it("rejects a protocol it does not run", async () => {
    const c = capture();
    expect(await main(["node", "--protocol", "zab", "--id", "n1", "--peers", "n1", "--data", "x"], c.io)).toBe(
      Exit.Error,
    );
    expect(c.err()).toContain("--protocol zab is not supported");
  });

  it("member rejects an unknown action or a missing id with the usage line", async () => {
    for (const args of [["member"], ["member", "demote", "n1"], ["member", "add"], ["member", "list", "n1"]]) {
      const c = capture();
      expect(await main(args, c.io)).toBe(Exit.Error);
      expect(c.err()).toContain("usage: quorate member list | add <id> [--learner]");
    }
  });

  it("kv rejects a wrong number of arguments", async () => {
    const c = capture();
    expect(await main(["kv", "put", "key", "value", "extra"], c.io)).toBe(Exit.Error);
    expect(c.err()).toContain("usage: quorate kv");
  });

  it("check decides a history file and reports unreadable input", async () => {
    const dir = mkdtempSync(join(tmpdir(), "quorate-check-"));
    const ok = join(dir, "ok.edn");
    writeFileSync(
      ok,
      [
        '{:process 0, :type :invoke, :f :put, :key "k", :value "a"}',
        '{:process 0, :type :ok, :f :put, :key "k", :value "a"}',
        '{:process 1, :type :invoke, :f :get, :key "k", :value nil}',
        '{:process 1, :type :ok, :f :get, :key "k", :value "a"}',
      ].join("\n"),
    );
    const bad = join(dir, "bad.edn");
    writeFileSync(
      bad,
      [
        '{:process 0, :type :invoke, :f :put, :key "k", :value "a"}',
        '{:process 0, :type :ok, :f :put, :key "k", :value "a"}',
        '{:process 1, :type :invoke, :f :get, :key "k", :value nil}',
        '{:process 1, :type :ok, :f :get, :key "k", :value "never-written"}',
      ].join("\n"),
    );
    expect(await main(["check", ok], capture().io)).toBe(0);
    expect(await main(["check", bad], capture().io)).toBe(1);
    const missing = capture();
    expect(await main(["check", join(dir, "missing.edn")], missing.io)).toBe(2);
  });
});
