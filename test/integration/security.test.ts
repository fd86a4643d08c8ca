import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { connect, type NatsConnection, PermissionViolationError } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServiceStats } from "../../packages/cli/src/service/discovery.js";
import { ErrorCode, encodeFrame, isQuorateError } from "../../packages/core/src/index.js";
import { KvClient } from "../../packages/kv/src/nats.js";
import { connectNats } from "../../packages/transport-nats/src/index.js";
import { cliProcess, type MemberProcess, waitForCluster } from "../harness/members.js";
import { type ConfiguredNats, startNatsWithConfig } from "../harness/nats-config.js";
import { eventually, requestAll } from "../harness/service.js";

/**
 * deploy/nats-server.conf, as shipped, on a real NATS server: members with one user each form
 * their clusters and serve the application user, while the server refuses a member's publish
 * in another member's name and any publish or subscription of the application user on
 * consensus subjects. A frame that claims another sender on the publisher's own subject gets
 * through the server but is dropped by receivers and counted as spoofed.
 */

const CONFIG = resolve(import.meta.dirname, "../../deploy/nats-server.conf");
const RAFT = ["n1", "n2", "n3"];
const PAXOS = { acceptors: ["a1", "a2", "a3"], proposers: ["p1", "p2"], learners: ["l1", "l2"] };
const USERS = [...RAFT, ...PAXOS.acceptors, ...PAXOS.proposers, ...PAXOS.learners, "app"];

/** Permission violations the server reported to one connection. */
function watchViolations(nc: NatsConnection): PermissionViolationError[] {
  const seen: PermissionViolationError[] = [];
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === "error" && s.error instanceof PermissionViolationError) seen.push(s.error);
    }
  })();
  return seen;
}

describe("deploy/nats-server.conf: per-member publish permissions", () => {
  let nats: ConfiguredNats;
  let root: string;
  const passwords = new Map(USERS.map((u) => [u, randomBytes(12).toString("hex")]));
  const password = (user: string) => passwords.get(user) as string;
  const processes: MemberProcess[] = [];
  let app: NatsConnection;
  let appViolations: PermissionViolationError[];

  /** A member process authenticated as `user`, credentials from QUORATE_USER/QUORATE_PASSWORD. */
  const member = (user: string, args: string[]): MemberProcess => {
    const dataDir = join(root, user);
    const proc = cliProcess(user, dataDir, [...args, "--id", user, "--data", dataDir, "--log-level", "info"], {
      NATS_URL: nats.url,
      QUORATE_USER: user,
      QUORATE_PASSWORD: password(user),
    });
    processes.push(proc);
    return proc;
  };
  const memberOutput = () => processes.map((p) => `--- ${p.id}\n${p.output().slice(-2000)}`).join("\n");

  beforeAll(async () => {
    nats = await startNatsWithConfig({
      configFile: CONFIG,
      // nats-server parses a variable's value as a config value: quoted, any password is a string.
      env: Object.fromEntries(USERS.map((u) => [`${u.toUpperCase()}_PASSWORD`, `"${password(u)}"`])),
    });
    root = mkdtempSync(join(tmpdir(), "quorate-security-"));
    app = await connect({ servers: nats.url, user: "app", pass: password("app"), name: "security-app" });
    appViolations = watchViolations(app);
    for (const id of RAFT) member(id, ["node", "--protocol", "raft", "--cluster", "prod", "--peers", RAFT.join(",")]);
    const topology = [
      ...["--acceptors", PAXOS.acceptors.join(","), "--proposers", PAXOS.proposers.join(",")],
      ...["--learners", PAXOS.learners.join(","), "--cluster", "prod-paxos"],
    ];
    for (const role of ["acceptor", "proposer", "learner"] as const) {
      for (const id of PAXOS[`${role}s`]) member(id, ["paxos", role, ...topology]);
    }
    for (const p of processes) p.start();
  });

  afterAll(async () => {
    await Promise.all(processes.map((p) => p.kill()));
    await app?.close();
    await nats?.stop();
    if (root !== undefined) rmSync(root, { recursive: true, force: true });
  });

  it("Raft members, each with its own user, elect a leader and serve the application user", async () => {
    await waitForCluster(app, "prod", (s) => s.length === 3 && s.some((m) => m.role === "leader"));
    const kv = await KvClient.connect({
      nats: { servers: nats.url, user: "app", pass: password("app") },
      cluster: "prod",
    });
    // On the application user's connection, so that a refused watch subscription is seen.
    const watcher = await KvClient.connect({ nats: app, cluster: "prod" });
    try {
      const watch = watcher.watch({ key: "greeting" });
      // Following the member's watch subject before the writes: they arrive there.
      await new Promise((r) => setTimeout(r, 500));
      await kv.put("greeting", "hello");
      expect(await kv.get("greeting")).toBe("hello");
      expect(await kv.cas("greeting", "hello", "bye")).toBe(true);
      // Watchers catch up by request and follow the members' watch subjects: both allowed.
      expect((await watch.next()).value).toMatchObject({ op: "put", key: "greeting", value: "hello" });
      expect((await watch.next()).value).toMatchObject({ op: "put", key: "greeting", value: "bye" });
      await watch.return();
      expect(appViolations).toEqual([]);
    } finally {
      await watcher.close();
      await kv.close();
    }
  });

  it("Multi-Paxos roles, each with its own user, choose values and serve the application user", async () => {
    await waitForCluster(app, "prod-paxos", (s) => s.length === 7 && s.some((m) => m.role === "proposer:active"));
    const kv = await KvClient.connect({
      nats: { servers: nats.url, user: "app", pass: password("app") },
      cluster: "prod-paxos",
    });
    try {
      await kv.put("greeting", "hola");
      expect(await kv.get("greeting")).toBe("hola");
    } finally {
      await kv.close();
    }
    // Nothing any member did was refused: the permissions are enough to run.
    expect(memberOutput()).not.toMatch(/Permissions Violation/i);
    expect(appViolations).toEqual([]);
  });

  it("a member cannot publish as another: the server refuses it", async () => {
    const n1 = await connect({ servers: nats.url, user: "n1", pass: password("n1"), name: "impostor-n1" });
    const violations = watchViolations(n1);
    try {
      const frame = encodeFrame("prod", "kv", "n2", "raft.timeout-now", { term: 1 });
      const foreign = ["quorate.prod.kv.b.n2", "quorate.prod.kv.d.n3.n2", "quorate.prod-paxos.paxos.b.a1-acceptor"];
      for (const subject of foreign) n1.publish(subject, frame);
      await n1.flush();
      await eventually("three refusals", async () => (violations.length >= foreign.length ? true : undefined), 5_000);
      expect(violations.map((v) => [v.operation, v.subject])).toEqual(foreign.map((s) => ["publish", s]));
      // The connection survives its refused publishes; its own subjects stay open.
      expect(n1.isClosed()).toBe(false);
    } finally {
      await n1.close();
    }
  });

  it("a frame naming another sender on the publisher's own subject is dropped and counted as spoofed", async () => {
    const n1 = await connect({ servers: nats.url, user: "n1", pass: password("n1"), name: "spoofer-n1" });
    const violations = watchViolations(n1);
    try {
      // Allowed by the server (n1's own subject), but the envelope claims n2 sent it.
      n1.publish("quorate.prod.kv.b.n1", encodeFrame("prod", "kv", "n2", "raft.timeout-now", { term: 1_000 }));
      await n1.flush();
      expect(violations).toEqual([]);
      const receivers = await eventually("n2 and n3 count the spoofed frame", async () => {
        const stats = await requestAll<ServiceStats>(app, "$SRV.STATS.quorate-raft");
        const counted = stats.filter((s) => ["n2", "n3"].includes(s.metadata.member ?? ""));
        const spoofed = (s: ServiceStats) =>
          (s.endpoints[0]?.data as { transport?: { dropped: { spoofed: number } } } | undefined)?.transport?.dropped
            .spoofed ?? 0;
        return counted.length === 2 && counted.every((s) => spoofed(s) >= 1) ? counted : undefined;
      });
      expect(receivers).toHaveLength(2);
      // The forged TimeoutNow was not obeyed: no election was started at term 1000.
      const status = await waitForCluster(app, "prod", (s) => s.length === 3);
      expect(status.every((m) => m.term < 1_000)).toBe(true);
    } finally {
      await n1.close();
    }
  });

  it("the application user can neither publish nor listen on consensus subjects", async () => {
    const before = appViolations.length;
    app.publish("quorate.prod.kv.b.n1", encodeFrame("prod", "kv", "n1", "raft.timeout-now", { term: 1 }));
    app.publish("quorate.prod.kv.d.n2.n1", new Uint8Array([1]));
    const eavesdrop = app.subscribe("quorate.prod.kv.b.*");
    await app.flush();
    const refused = await eventually("three refusals", async () => {
      const seen = appViolations.slice(before);
      return seen.length >= 3 ? seen : undefined;
    });
    expect(refused.map((v) => [v.operation, v.subject])).toEqual([
      ["publish", "quorate.prod.kv.b.n1"],
      ["publish", "quorate.prod.kv.d.n2.n1"],
      ["subscription", "quorate.prod.kv.b.*"],
    ]);
    await eventually("the refused subscription closes", async () => (eavesdrop.isClosed() ? true : undefined), 5_000);
  });

  it("a connection without a configured user is refused", async () => {
    for (const credentials of [{ user: "intruder", pass: "guess" }, {}]) {
      const error = await connectNats({ servers: nats.url, ...credentials }).then(
        async (nc) => {
          await nc.close();
          return null;
        },
        (err: unknown) => err,
      );
      expect(isQuorateError(error, ErrorCode.Config), String(error)).toBe(true);
      expect(String(error)).toMatch(/rejected the credentials/);
    }
  });
});
