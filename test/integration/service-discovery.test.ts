import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServiceIdentity, ServiceInfo, ServiceStats } from "../../packages/cli/src/service/discovery.js";
import { QUORATE_VERSION } from "../../packages/cli/src/service/version.js";
import { KvClient } from "../../packages/kv/src/nats.js";
import { openLmdbStorage } from "../../packages/storage/src/index.js";
import { CLI, cliProcess, type MemberProcess, waitForCluster } from "../harness/members.js";
import { freeLoopbackPort, type NatsServer, startNats } from "../harness/nats.js";
import { eventually, probe, requestAll } from "../harness/service.js";

const run = promisify(execFile);

/**
 * The service surface of `quorate node` processes over a real NATS server: NATS micro discovery
 * (`$SRV.PING|INFO|STATS`) seen by a plain NATS client, /livez and /readyz through a member's
 * life, settings from flags, QUORATE_* variables and a config file, and start-up errors.
 */

const CLUSTER = "itsvc";
const IDS = ["n1", "n2", "n3"];

describe("members as NATS micro services, with health endpoints", () => {
  let nats: NatsServer;
  let plain: NatsConnection;
  let root: string;
  let members: Map<string, MemberProcess>;
  let healthPorts: Map<string, number>;
  const output = () => [...(members?.values() ?? [])].map((m) => `--- ${m.id}\n${m.output().slice(-3000)}`).join("\n");

  beforeAll(async () => {
    nats = await startNats();
    // A plain NATS client, as an operator's tool would use: nothing of Quorate's.
    plain = await connect({ servers: nats.url, user: nats.user, pass: nats.pass, name: "discovery-test" });
    root = mkdtempSync(join(tmpdir(), "quorate-svc-"));
    members = new Map();
    healthPorts = new Map();
    for (const id of IDS) {
      const port = await freeLoopbackPort();
      healthPorts.set(id, port);
      const dataDir = join(root, id);
      const common = ["--user", nats.user, "--password", nats.pass, "--health-host", "127.0.0.1"];
      if (id === "n3") {
        // n3 is configured the way a container usually is: a config file plus QUORATE_* variables.
        const file = join(root, "n3.json");
        writeFileSync(file, JSON.stringify({ protocol: "raft", peers: IDS, data: dataDir, "log-level": "info" }));
        members.set(
          id,
          cliProcess(id, dataDir, ["node", "--config", file, ...common], {
            QUORATE_CLUSTER: CLUSTER,
            QUORATE_ID: id,
            QUORATE_HEALTH_PORT: String(port),
            NATS_URL: nats.url,
          }),
        );
      } else {
        members.set(
          id,
          cliProcess(id, dataDir, [
            ...["node", "--protocol", "raft", "--cluster", CLUSTER, "--id", id, "--peers", IDS.join(",")],
            ...["--data", dataDir, "--nats", nats.url, "--health-port", String(port), ...common],
          ]),
        );
      }
    }
  });

  afterAll(async () => {
    await Promise.all([...(members?.values() ?? [])].map((m) => m.kill()));
    await plain?.close();
    await nats?.stop();
    if (root !== undefined) rmSync(root, { recursive: true, force: true });
  });

  const port = (id: string) => healthPorts.get(id) as number;

  it("a member without a quorum is live but not ready: no leader known", async () => {
    members.get("n1")?.start();
    const notReady = await eventually(
      "n1 running without a leader",
      async () => {
        const r = await probe(port("n1"), "/readyz");
        return r.body.phase === "running" ? r : undefined;
      },
      20_000,
      output,
    );
    expect(notReady.status).toBe(503);
    expect(notReady.body.status).toBe("unavailable");
    expect(notReady.body.reasons).toEqual(["no leader known"]);
    expect((await probe(port("n1"), "/livez")).status).toBe(200);
  });

  it("every member answers $SRV.PING and $SRV.INFO.quorate-raft with its identity and endpoints", async () => {
    members.get("n2")?.start();
    members.get("n3")?.start();
    await waitForCluster(plain, CLUSTER, (s) => s.length === 3 && s.some((m) => m.role === "leader"));

    const pings = (await requestAll<ServiceIdentity>(plain, "$SRV.PING")).filter((p) => p.name === "quorate-raft");
    expect(pings.map((p) => p.id).sort()).toEqual(["itsvc-n1", "itsvc-n2", "itsvc-n3"]);
    for (const ping of pings) {
      const member = ping.id.replace("itsvc-", "");
      expect(ping).toEqual({
        type: "io.nats.micro.v1.ping_response",
        name: "quorate-raft",
        id: `itsvc-${member}`,
        version: QUORATE_VERSION,
        metadata: { cluster: CLUSTER, member, protocol: "raft", group: "kv" },
      });
    }

    const infos = await requestAll<ServiceInfo>(plain, "$SRV.INFO.quorate-raft");
    expect(infos).toHaveLength(3);
    const n2 = infos.find((i) => i.id === "itsvc-n2");
    expect(n2).toMatchObject({
      type: "io.nats.micro.v1.info_response",
      name: "quorate-raft",
      version: QUORATE_VERSION,
    });
    expect(n2?.description).toContain("Raft member n2 of cluster itsvc");
    expect(n2?.endpoints).toEqual([
      { name: "kv", subject: "quorate.itsvc.rpc.kv", queue_group: "quorate-kv" },
      { name: "kv-direct", subject: "quorate.itsvc.rpc.kv.n2" },
      { name: "status", subject: "quorate.itsvc.rpc.status" },
    ]);
  });

  it("$SRV.STATS reports role, term, leader and indexes, and counts the KV requests each member served", async () => {
    const kv = await KvClient.connect({ nats: nats.connectOptions(), cluster: CLUSTER });
    try {
      for (let i = 0; i < 5; i++) await kv.put(`k${i}`, `v${i}`);
      expect(await kv.get("k4")).toBe("v4");
    } finally {
      await kv.close();
    }
    const stats = await requestAll<ServiceStats>(plain, "$SRV.STATS.quorate-raft");
    expect(stats).toHaveLength(3);
    const leader = stats.find((s) => (s.endpoints[0]?.data as { role?: string } | undefined)?.role === "leader");
    expect(leader, JSON.stringify(stats)).toBeDefined();
    for (const s of stats) {
      expect(s.type).toBe("io.nats.micro.v1.stats_response");
      expect(Number.isNaN(Date.parse(s.started))).toBe(false);
      expect(s.endpoints.map((e) => e.name)).toEqual(["kv", "kv-direct", "status"]);
      expect(s.endpoints[0]?.data).toMatchObject({
        protocol: "raft",
        cluster: CLUSTER,
        id: s.metadata.member,
        term: expect.any(Number),
        leader: leader?.metadata.member,
        commitIndex: expect.any(Number),
        appliedIndex: expect.any(Number),
        transport: { dropped: { spoofed: 0 } },
      });
    }
    // The six requests (five puts and a get) were each served once, by some member, with no error.
    const served = stats.flatMap((s) => s.endpoints.filter((e) => e.name !== "status"));
    const requests = served.reduce((sum, e) => sum + e.num_requests, 0);
    expect(requests).toBeGreaterThanOrEqual(6);
    expect(served.every((e) => e.num_errors === 0 && e.processing_time >= 0)).toBe(true);

    // One instance, by name and id.
    const one = await plain.request(`$SRV.STATS.quorate-raft.itsvc-${leader?.metadata.member}`, "", { timeout: 2_000 });
    expect(one.json<ServiceStats>().id).toBe(leader?.id);
  });

  it("/readyz turns 200 on every member once a leader is known and it has applied what is committed", async () => {
    for (const id of IDS) {
      const ready = await eventually(
        `${id} ready`,
        async () => {
          const r = await probe(port(id), "/readyz");
          return r.status === 200 ? r : undefined;
        },
        20_000,
        output,
      );
      expect(ready.body).toMatchObject({ status: "ok", reasons: [], phase: "running" });
      expect(ready.body.member).toMatchObject({ id, leader: expect.any(String) });
    }
  });

  it("Multi-Paxos roles answer under their own service names; a lone Paxos member becomes ready", async () => {
    const healthPort = await freeLoopbackPort();
    const dataDir = join(root, "p1");
    const paxos = cliProcess("p1", dataDir, [
      ...["node", "--protocol", "paxos", "--cluster", "itsvcpx", "--id", "p1", "--peers", "p1", "--data", dataDir],
      ...["--nats", nats.url, "--user", nats.user, "--password", nats.pass, "--tick-ms", "20"],
      ...["--health-port", String(healthPort), "--health-host", "127.0.0.1"],
    ]);
    paxos.start();
    try {
      const ready = await eventually(
        "paxos member ready",
        async () => {
          const r = await probe(healthPort, "/readyz");
          return r.status === 200 ? r : undefined;
        },
        20_000,
        () => paxos.output(),
      );
      expect(ready.body.reasons).toEqual([]);
      for (const role of ["acceptor", "proposer", "learner"]) {
        const [ping, ...others] = await requestAll<ServiceIdentity>(plain, `$SRV.PING.quorate-paxos-${role}`);
        expect(others).toEqual([]);
        expect(ping).toMatchObject({
          type: "io.nats.micro.v1.ping_response",
          id: `itsvcpx-p1-${role}`,
          metadata: { cluster: "itsvcpx", member: "p1", instance: `p1-${role}`, protocol: "paxos", role },
        });
      }
      const [learner] = await requestAll<ServiceInfo>(plain, "$SRV.INFO.quorate-paxos-learner");
      expect(learner?.endpoints.map((e) => e.subject)).toEqual([
        "quorate.itsvcpx.rpc.kv",
        "quorate.itsvcpx.rpc.kv.p1-learner",
        "quorate.itsvcpx.rpc.status",
      ]);
      const [proposer] = await requestAll<ServiceStats>(plain, "$SRV.STATS.quorate-paxos-proposer.itsvcpx-p1-proposer");
      expect(proposer?.endpoints.map((e) => e.name)).toEqual(["status"]);
      expect(proposer?.endpoints[0]?.data).toMatchObject({
        role: "proposer:active",
        ballot: [expect.any(Number), "p1-proposer"],
        leader: "p1-proposer",
      });
    } finally {
      expect(await paxos.stop()).toBe(0);
    }
  });

  it("a data directory of another cluster is refused with a message naming both", async () => {
    const dataDir = join(root, "foreign");
    const storage = await openLmdbStorage({ dir: dataDir, cluster: "othercluster", member: "n1" });
    await storage.close();
    const failure = await run(process.execPath, [
      CLI,
      ...["node", "--cluster", CLUSTER, "--id", "n1", "--peers", "n1", "--data", dataDir, "--nats", nats.url],
      ...["--user", nats.user, "--password", nats.pass, "--nats-wait-ms", "0", "--log-level", "silent"],
    ]).catch((e: { code: number; stderr: string }) => e);
    expect(failure).toMatchObject({ code: 2 });
    expect((failure as { stderr: string }).stderr).toContain(
      `error (QUORATE_STORAGE): data directory ${dataDir} belongs to cluster othercluster member n1, not cluster ${CLUSTER} member n1`,
    );
  });

  it("with NATS gone, members stay live but are not ready", async () => {
    await nats.stop();
    for (const id of IDS) {
      const cut = await eventually(`${id} unready without NATS`, async () => {
        const r = await probe(port(id), "/readyz");
        return r.status === 503 ? r : undefined;
      });
      expect(cut.body.reasons).toContain("not connected to NATS");
      expect((await probe(port(id), "/livez")).status).toBe(200);
    }
  });
});
