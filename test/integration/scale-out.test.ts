import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MemberStatus } from "../../packages/cli/src/index.js";
import { KvClient } from "../../packages/kv/src/nats.js";
import { connectNats, type NatsConnection } from "../../packages/transport-nats/src/index.js";
import { cliProcess, type MemberProcess, quorateCommand, waitForCluster } from "../harness/members.js";
import { type NatsServer, startNats } from "../harness/nats.js";

/**
 * Scaling the Raft StatefulSet (deploy/k8s/raft.yaml) up by one, with processes configured only
 * from the environment as its pods are: every pod gets the same QUORATE_PEERS (the 3 that
 * bootstrapped the cluster) and its own QUORATE_ID. The 4th, n4, is not among those peers: it
 * must start as a joining member and wait, instead of failing validation and crash-looping, then
 * become a voter holding the data once an operator runs `quorate member add n4`, and come back
 * as a voter when restarted with the same environment.
 */

const CLUSTER = "itscale";
const BOOTSTRAP = ["n1", "n2", "n3"];
const KEYS = 40;

describe("scaling a Raft StatefulSet up by one", () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let root: string;
  const pods = new Map<string, MemberProcess>();

  /** A pod of the StatefulSet: `quorate node` with nothing but the StatefulSet's environment. */
  const pod = (id: string): MemberProcess => {
    const dataDir = join(root, id);
    return cliProcess(id, dataDir, ["node"], {
      QUORATE_PROTOCOL: "raft",
      QUORATE_CLUSTER: CLUSTER,
      QUORATE_ID: id,
      QUORATE_PEERS: BOOTSTRAP.join(","),
      QUORATE_DATA: dataDir,
      QUORATE_LOG_LEVEL: "info",
      NATS_URL: nats.url,
      QUORATE_USER: nats.user,
      QUORATE_PASSWORD: nats.pass,
    });
  };

  /** `quorate <args>` against the cluster; resolves with stdout, rejects with { code, stderr }. */
  const quorate = (...args: string[]) => quorateCommand(CLUSTER, nats)(...args);

  /** Every one of `voters` answers, has the same configuration, the leader's applied index and the same state. */
  const converged = (voters: string[]) =>
    waitForCluster(
      nc,
      CLUSTER,
      (s: MemberStatus[]) => {
        const mine = s.filter((m) => voters.includes(m.id));
        const leader = mine.find((m) => m.role === "leader");
        return (
          leader !== undefined &&
          mine.length === voters.length &&
          mine.every(
            (m) =>
              m.appliedIndex === leader.appliedIndex &&
              m.stateDigest === leader.stateDigest &&
              [...(m.voters ?? [])].sort().join() === [...voters].sort().join(),
          )
        );
      },
      60_000,
    );

  beforeAll(async () => {
    nats = await startNats();
    nc = await connectNats({ ...nats.connectOptions(), name: "scale-out-test" });
    root = mkdtempSync(join(tmpdir(), "quorate-scale-out-"));
    for (const id of BOOTSTRAP) pods.set(id, pod(id));
    for (const p of pods.values()) p.start();
    await waitForCluster(nc, CLUSTER, (s) => s.length === 3 && s.some((m) => m.role === "leader"));
    const client = await KvClient.connect({ nats: nats.connectOptions(), cluster: CLUSTER, timeoutMs: 20_000 });
    for (let i = 0; i < KEYS; i++) await client.put(`key-${i}`, `value-${i}`);
    await client.close();
  });

  afterAll(async () => {
    await Promise.all([...pods.values()].map((p) => p.kill()));
    if (root !== undefined) rmSync(root, { recursive: true, force: true });
    await nc?.close();
    await nats?.stop();
  });

  it("the 4th pod waits to be added, saying how, then becomes a voter with the data", async () => {
    const n4 = pod("n4");
    pods.set("n4", n4);
    n4.start();
    // It runs, answers status with no configuration, and says what the operator has to do.
    const waiting = await waitForCluster(nc, CLUSTER, (s) => s.some((m) => m.id === "n4"));
    expect(waiting.find((m) => m.id === "n4")?.voters ?? []).toEqual([]);
    expect(n4.output()).toContain("starting as a joining member");
    expect(n4.output()).toContain(`quorate member add n4 --cluster ${CLUSTER}`);
    expect(n4.output()).not.toContain("QUORATE_CONFIG");
    expect(n4.running).toBe(true);
    const before = JSON.parse(await quorate("member", "list", "--json")) as { voters: string[] };
    expect([...before.voters].sort()).toEqual(BOOTSTRAP);

    await quorate("member", "add", "n4");
    const statuses = await converged([...BOOTSTRAP, "n4"]);
    const leader = statuses.find((m) => m.role === "leader");
    expect(statuses.find((m) => m.id === "n4")?.stateDigest).toBe(leader?.stateDigest);
    expect(n4.running).toBe(true);
  });

  it("restarted with the same environment, the 4th pod resumes as a voter from its data directory", async () => {
    const n4 = pods.get("n4");
    expect(n4).toBeDefined();
    await n4?.stop();
    n4?.start();
    await converged([...BOOTSTRAP, "n4"]);
    // Still serving: a write after the restart reaches every voter, n4 included.
    const client = await KvClient.connect({ nats: nats.connectOptions(), cluster: CLUSTER, timeoutMs: 20_000 });
    await client.put("after-restart", "yes");
    expect(await client.get("key-0")).toBe("value-0");
    await client.close();
    await converged([...BOOTSTRAP, "n4"]);
  });
});
