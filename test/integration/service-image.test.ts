import { setTimeout as sleep } from "node:timers/promises";
import { getContainerRuntimeClient } from "testcontainers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MemberStatus } from "../../packages/cli/src/index.js";
import { ImageCluster, refusedPublishes } from "../harness/containers.js";
import { eventually, probe } from "../harness/service.js";
import { acknowledgedMore, lostWrites, writeUntil } from "../harness/write-load.js";

/**
 * The container image end to end: deploy/node-local/build.sh builds a Node base from this
 * machine's node (no Docker Hub), deploy/build-image.sh the quorate image on it. Three Raft
 * members then run as containers on a Docker network with a NATS server secured by
 * deploy/nats-server.conf, configured only through the environment, as deploy/compose.yaml
 * runs them, hardened as deploy/k8s runs them (read-only root, no capabilities). Under
 * concurrent writes the leader's container is killed and started again, another member is
 * paused and one is cut off the network: no acknowledged write may be lost, and the members
 * must end with the same state.
 */

const IMAGE = "quorate/quorate:integration-test";
const CLUSTER = "prod";
const RAFT = ["n1", "n2", "n3"];
/** How long a member stays paused: well above its election timeout (at most 19 ticks of 50 ms). */
const PAUSE_MS = 3_000;
/** Writes acknowledged while a fault lasts: the remaining majority makes progress. */
const PROGRESS = 30;

const leaderOf = (s: MemberStatus[]) => s.find((m) => m.role === "leader")?.id;

describe("the quorate container image", () => {
  const c = new ImageCluster(IMAGE, CLUSTER);
  const { ledger } = c;
  const member = (id: string) => c.member(id);
  const status = (predicate: (s: MemberStatus[]) => boolean, timeoutMs?: number) => c.status(predicate, timeoutMs);

  /** Until `id` answers again and has applied everything the leader had committed when this was called. */
  const caughtUp = async (id: string, timeoutMs = 60_000): Promise<MemberStatus> => {
    const now = await status((s) => leaderOf(s) !== undefined);
    const committed = now.find((m) => m.role === "leader")?.commitIndex ?? 0;
    const s = await status((x) => (x.find((m) => m.id === id)?.appliedIndex ?? -1) >= committed, timeoutMs);
    return s.find((m) => m.id === id) as MemberStatus;
  };

  beforeAll(() =>
    c.start(async (net) => {
      await Promise.all(
        RAFT.map(async (id) => {
          const started = await net.startMember({
            image: IMAGE,
            id,
            env: { QUORATE_PROTOCOL: "raft", QUORATE_CLUSTER: CLUSTER, QUORATE_PEERS: RAFT.join(",") },
          });
          c.members.set(id, started);
        }),
      );
    }),
  );

  afterAll(() => c.stop());

  it("is small, runs as uid 1000 on a read-only root, and its HEALTHCHECK passes", async () => {
    const client = await getContainerRuntimeClient();
    const image = await client.container.dockerode.getImage(IMAGE).inspect();
    // The runtime holds node and the production dependencies, not the workspace's dev tooling.
    expect(image.Size).toBeLessThan(250_000_000);
    expect(image.Config.User).toBe("1000:1000");
    const n1 = member("n1").container;
    const uid = await n1.exec(["node", "-e", "process.stdout.write(String(process.getuid()))"]);
    expect(uid.output).toBe("1000");
    const check = image.Config.Healthcheck?.Test ?? [];
    expect(check[0]).toBe("CMD");
    expect((await n1.exec(check.slice(1))).exitCode).toBe(0);
  });

  it("three members in containers elect a leader and each reports ready", async () => {
    await status((s) => s.length === 3 && s.some((m) => m.role === "leader"));
    for (const id of RAFT) {
      const ready = await eventually(`${id} ready`, async () => {
        const r = await probe(member(id).healthPort, "/readyz");
        return r.status === 200 ? r : undefined;
      });
      expect(ready.body.status).toBe("ok");
    }
  });

  it("under concurrent writes: the leader's container killed and started again, a member paused, the leader cut off the network", async () => {
    const clients = await c.connectClients(4);
    /** Back as a follower, having applied everything it missed. */
    const rejoined = async (id: string) => expect((await caughtUp(id)).role).toBe("follower");
    const faults = async () => {
      await acknowledgedMore(ledger, PROGRESS);

      const killed = leaderOf(await status((s) => leaderOf(s) !== undefined)) as string;
      await member(killed).kill();
      const successor = await status((s) => leaderOf(s) !== undefined && leaderOf(s) !== killed);
      expect(successor.map((m) => m.id)).not.toContain(killed);
      await acknowledgedMore(ledger, PROGRESS);
      await member(killed).start();
      await rejoined(killed);

      const leader = leaderOf(await status((s) => s.length === 3 && leaderOf(s) !== undefined));
      const paused = RAFT.find((id) => id !== killed && id !== leader) as string;
      await member(paused).pause();
      await Promise.all([sleep(PAUSE_MS), acknowledgedMore(ledger, PROGRESS)]);
      expect((await status(() => true)).map((m) => m.id)).not.toContain(paused);
      await member(paused).unpause();
      await rejoined(paused);

      const cut = leaderOf(await status((s) => s.length === 3 && leaderOf(s) !== undefined)) as string;
      await member(cut).disconnect();
      const rest = await status((s) => leaderOf(s) !== undefined && leaderOf(s) !== cut);
      expect(rest.map((m) => m.id)).not.toContain(cut);
      await acknowledgedMore(ledger, PROGRESS);
      await member(cut).reconnect();
      await rejoined(cut);
    };
    const faulting = faults();
    await Promise.all([writeUntil(clients, "chaos", ledger, faulting), faulting]);
    expect(ledger.acknowledged.size).toBeGreaterThan(4 * PROGRESS);
  });

  it("no acknowledged write is lost", async () => {
    expect(await lostWrites(c.clients, ledger)).toEqual([]);
  });

  it("all members converge: the same applied index and state digest", async () => {
    const settled = await status(
      (s) =>
        s.length === 3 &&
        leaderOf(s) !== undefined &&
        new Set(s.map((m) => m.appliedIndex)).size === 1 &&
        new Set(s.map((m) => m.stateDigest)).size === 1,
      60_000,
    );
    // Every acknowledged write is an entry of the log each member applied.
    expect(settled[0]?.appliedIndex).toBeGreaterThanOrEqual(ledger.acknowledged.size);
    expect(settled.every((m) => m.stateDigest !== undefined)).toBe(true);
    // deploy/nats-server.conf lets every member do all it needs, also across its reconnects and restarts.
    for (const id of RAFT) expect(refusedPublishes(await member(id).log())).toEqual([]);
  });
});
