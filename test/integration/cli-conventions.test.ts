import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { helpText } from "../../packages/cli/src/args.js";
import { adminRequest } from "../../packages/cli/src/index.js";
import { COMMANDS } from "../../packages/cli/src/main.js";
import { packValue } from "../../packages/core/src/index.js";
import { KvClient } from "../../packages/kv/src/nats.js";
import { connectNats, type NatsConnection } from "../../packages/transport-nats/src/index.js";
import { CLI, memberSet, waitForCluster } from "../harness/members.js";
import { type NatsServer, startNats } from "../harness/nats.js";

const execFileAsync = promisify(execFile);
const CLUSTER = "itconv";

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs the built CLI as a user does; only the environment given (and PATH) reaches it. */
async function quorate(args: string[], env: Record<string, string> = {}): Promise<Outcome> {
  const started = Date.now();
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [CLI, ...args], {
      env: { PATH: process.env.PATH ?? "", ...env },
    });
    return { code: 0, stdout, stderr, ms: Date.now() - started };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr, ms: Date.now() - started };
  }
}

describe("the CLI behaves like the tools NATS users know", () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let cleanup: () => Promise<void> = async () => {};
  let auth: string[];

  beforeAll(async () => {
    nats = await startNats();
    auth = ["--nats", nats.url, "--user", nats.user, "--password", nats.pass];
    const set = memberSet({ cluster: CLUSTER, ids: ["n1"], natsUrl: nats.url, user: nats.user, pass: nats.pass });
    cleanup = set.cleanup;
    for (const m of set.members) m.start();
    nc = await connectNats(nats.connectOptions());
    await waitForCluster(nc, CLUSTER, (ms) => ms.some((m) => m.role === "leader"));
  }, 120_000);

  afterAll(async () => {
    await nc?.close();
    await cleanup();
    await nats?.stop();
  });

  it("--help and -h exit 0 for every command and list every flag its table has", async () => {
    for (const [name, { spec }] of Object.entries(COMMANDS)) {
      const out = await quorate([name, name === "kv" ? "get" : "", "--help"].filter((a) => a !== ""));
      expect(out.code, `${name} --help: ${out.stderr}`).toBe(0);
      expect(out.stdout).toBe(helpText(spec));
      for (const key of Object.keys(spec.options)) expect(out.stdout, `${name} --${key}`).toContain(`--${key}`);
      expect((await quorate([name, "-h"])).code).toBe(0);
    }
    const version = await quorate(["--version"]);
    expect(version).toMatchObject({ code: 0, stdout: expect.stringMatching(/^quorate \d+\.\d+\.\d+\n$/) });
  });

  it("fails at once, naming the cluster and subject, when nothing answers on the cluster's subjects", async () => {
    const cases: [string[], string][] = [
      [["kv", "get", "k"], "quorate.nosuch.rpc.kv"],
      [["kv", "put", "k", "v"], "quorate.nosuch.rpc.kv"],
      [["status"], "quorate.nosuch.rpc.status"],
      [["member", "list"], "quorate.nosuch.rpc.status"],
      [["leader", "transfer"], "quorate.nosuch.rpc.status"],
    ];
    for (const [args, subject] of cases) {
      const out = await quorate([...args, "--cluster", "nosuch", ...auth]);
      expect(out.code, args.join(" ")).toBe(2);
      expect(out.stderr).toContain("error (QUORATE_UNREACHABLE): no member of cluster 'nosuch'");
      expect(out.stderr).toContain(subject);
      expect(out.stderr).toContain("--cluster");
      expect(out.stderr).toContain("--nats");
      // Not the 10 s of retries a KV client spends on a member that is restarting.
      expect(out.ms, args.join(" ")).toBeLessThan(5_000);
    }
  });

  it("an admin request to a member nobody serves fails at once as a definite Unreachable, not Indeterminate", async () => {
    const started = Date.now();
    await expect(adminRequest(nc, CLUSTER, "n9", { op: "transfer-leadership" }, 10_000)).rejects.toMatchObject({
      code: "QUORATE_UNREACHABLE",
      message: expect.stringContaining(`quorate.${CLUSTER}.rpc.admin.n9`),
    });
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it("connects through a NATS CLI context, and through QUORATE_* credentials as quorate node does", async () => {
    const home = mkdtempSync(join(tmpdir(), "quorate-xdg-"));
    mkdirSync(join(home, "nats", "context"), { recursive: true });
    writeFileSync(
      join(home, "nats", "context", "itconv.json"),
      JSON.stringify({ description: "", url: nats.url, user: nats.user, password: nats.pass, token: "", creds: "" }),
    );
    const env = { XDG_CONFIG_HOME: home };
    expect(
      await quorate(["kv", "put", "ctx", "from-context", "--context", "itconv", "--cluster", CLUSTER], env),
    ).toMatchObject({
      code: 0,
      stdout: "OK\n",
    });
    expect(
      await quorate(["kv", "get", "ctx", "--cluster", CLUSTER], { ...env, QUORATE_CONTEXT: "itconv" }),
    ).toMatchObject({ code: 0, stdout: "from-context\n" });
    const fromEnv = await quorate(["status", "--json"], {
      NATS_URL: nats.url,
      QUORATE_USER: nats.user,
      QUORATE_PASSWORD: nats.pass,
      QUORATE_CLUSTER: CLUSTER,
    });
    expect(fromEnv.code, fromEnv.stderr).toBe(0);
    expect(JSON.parse(fromEnv.stdout)).toMatchObject({ cluster: CLUSTER, members: [{ id: "n1", role: "leader" }] });
    // Without credentials the server refuses: the context's were what let the first two in.
    expect(await quorate(["kv", "get", "ctx", "--cluster", CLUSTER, "--nats", nats.url])).toMatchObject({ code: 2 });
  });

  it("kv get shows bytes unambiguously, and --raw writes them as they are", async () => {
    const kv = await KvClient.connect({ nats: nc, cluster: CLUSTER });
    await kv.put("blob", new Uint8Array([0x68, 0x69, 0x00, 0xff]));
    await kv.close();
    const text = await quorate(["kv", "get", "blob", "--cluster", CLUSTER, ...auth]);
    expect(text).toMatchObject({ code: 0, stdout: "<4 bytes: 686900ff>\n" });
    const raw = await new Promise<Buffer>((resolve, reject) =>
      execFile(
        process.execPath,
        [CLI, "kv", "get", "blob", "--raw", "--cluster", CLUSTER, ...auth],
        { encoding: "buffer" },
        (err, stdout) => (err === null ? resolve(stdout) : reject(err)),
      ),
    );
    expect([...raw]).toEqual([0x68, 0x69, 0x00, 0xff]);
  });

  it("KV and admin errors carry the NATS micro error headers a raw request sees", async () => {
    const malformed = await nc.request(`quorate.${CLUSTER}.rpc.kv`, new TextEncoder().encode("not msgpack"), {
      timeout: 5_000,
    });
    expect(malformed.headers?.get("Nats-Service-Error-Code")).toBe("400");
    expect(malformed.headers?.get("Nats-Service-Error")).toMatch(/^QUORATE_REJECTED: /);

    // A write in a session the cluster never opened goes through consensus and is refused there.
    const put = { op: "put", key: "k", value: "v", session: { client: "nobody", seq: 1, firstUnacked: 1 } };
    const expired = await nc.request(`quorate.${CLUSTER}.rpc.kv`, packValue(put), { timeout: 5_000 });
    expect(expired.headers?.get("Nats-Service-Error-Code")).toBe("410");
    expect(expired.headers?.get("Nats-Service-Error")).toMatch(/^QUORATE_SESSION_EXPIRED: /);

    const removal = await nc.request(
      `quorate.${CLUSTER}.rpc.admin.n1`,
      JSON.stringify({ op: "remove-member", member: "n9" }),
      {
        timeout: 5_000,
      },
    );
    expect(removal.headers?.get("Nats-Service-Error-Code")).toBe("409");
    expect(removal.headers?.get("Nats-Service-Error")).toMatch(/^QUORATE_MEMBERSHIP: /);
    expect(removal.json()).toMatchObject({ ok: false, code: "QUORATE_MEMBERSHIP" });

    const ok = await nc.request(`quorate.${CLUSTER}.rpc.kv`, packValue({ op: "get", key: "ctx" }), { timeout: 5_000 });
    expect(ok.headers?.get("Nats-Service-Error") ?? "").toBe("");
  });
});
