import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MemberStatus } from "../../packages/cli/src/index.js";
import { ImageCluster, refusedPublishes } from "../harness/containers.js";
import { eventually, probe } from "../harness/service.js";
import { acknowledgedMore, lostWrites, writeUntil } from "../harness/write-load.js";

/**
 * Multi-Paxos from the container image, one role per container as deploy/compose.yaml runs
 * "prod-paxos" (3 acceptors, 2 proposers, 2 learners serving KV), each with its own user of
 * deploy/nats-server.conf. Under concurrent writes the active proposer's container is killed
 * and started again, an acceptor is paused and a learner is cut off the network: no
 * acknowledged write may be lost, and the learners must end with the same state.
 */

const IMAGE = "quorate/quorate:integration-test-paxos";
const CLUSTER = "prod-paxos";
const ROLES = {
  acceptor: ["a1", "a2", "a3"],
  proposer: ["p1", "p2"],
  learner: ["l1", "l2"],
} as const;
const ALL = Object.values(ROLES).flat();
/** How long the acceptor stays paused: many times the proposers' retransmit and leader timeouts (6 and 10 ticks of 50 ms). */
const PAUSE_MS = 3_000;
/** Writes acknowledged while a fault lasts: the remaining quorums make progress. */
const PROGRESS = 30;

const ROLE_OF = new Map<string, string>(Object.entries(ROLES).flatMap(([role, ids]) => ids.map((id) => [id, role])));
/** The id a role reports in its status: `a1-acceptor`. */
const roleId = (member: string) => `${member}-${ROLE_OF.get(member)}`;
const activeProposer = (s: MemberStatus[]) => s.find((m) => m.role === "proposer:active")?.id.replace(/-proposer$/, "");
const answering = (s: MemberStatus[]) => s.map((m) => m.id);

describe("Multi-Paxos roles as containers of the quorate image", () => {
  const c = new ImageCluster(IMAGE, CLUSTER);
  const { ledger } = c;
  const member = (id: string) => c.member(id);
  const status = (predicate: (s: MemberStatus[]) => boolean, timeoutMs?: number) => c.status(predicate, timeoutMs);

  /**
   * Until `member` answers again and holds everything the active proposer knew to be chosen when
   * this was called: an acceptor has accepted up to there, a learner has applied it.
   */
  const caughtUp = async (member: string, timeoutMs = 60_000): Promise<MemberStatus> => {
    const now = await status((s) => activeProposer(s) !== undefined);
    const chosen = now.find((m) => m.role === "proposer:active")?.commitIndex ?? 0;
    const held = (m: MemberStatus) => (m.role === "learner" ? m.appliedIndex : m.lastLogIndex);
    const s = await status((x) => {
      const m = x.find((y) => y.id === roleId(member));
      return m !== undefined && held(m) >= chosen;
    }, timeoutMs);
    return s.find((m) => m.id === roleId(member)) as MemberStatus;
  };

  beforeAll(() =>
    c.start(async (net) => {
      const topology = {
        QUORATE_CLUSTER: CLUSTER,
        QUORATE_ACCEPTORS: ROLES.acceptor.join(","),
        QUORATE_PROPOSERS: ROLES.proposer.join(","),
        QUORATE_LEARNERS: ROLES.learner.join(","),
        // Acceptors truncate what learners checkpointed during the run: catching up crosses it.
        QUORATE_CHECKPOINT_INTERVAL: "200",
      };
      await Promise.all(
        (Object.keys(ROLES) as (keyof typeof ROLES)[]).flatMap((role) =>
          ROLES[role].map(async (id) => {
            c.members.set(id, await net.startMember({ image: IMAGE, id, env: topology, command: ["paxos", role] }));
          }),
        ),
      );
    }),
  );

  afterAll(() => c.stop());

  it("seven role containers find an active proposer and each reports ready", async () => {
    await status((s) => s.length === ALL.length && activeProposer(s) !== undefined);
    for (const id of ALL) {
      const ready = await eventually(`${id} ready`, async () => {
        const r = await probe(member(id).healthPort, "/readyz");
        return r.status === 200 ? r : undefined;
      });
      expect(ready.body.status).toBe("ok");
    }
  });

  it("under concurrent writes: the active proposer's container killed and started again, an acceptor paused, a learner cut off the network", async () => {
    const clients = await c.connectClients(4);
    const faults = async () => {
      await acknowledgedMore(ledger, PROGRESS);

      const killed = activeProposer(await status((s) => activeProposer(s) !== undefined)) as string;
      await member(killed).kill();
      const successor = await status((s) => activeProposer(s) !== undefined && activeProposer(s) !== killed);
      expect(answering(successor)).not.toContain(roleId(killed));
      await acknowledgedMore(ledger, PROGRESS);
      await member(killed).start();
      // Back on its data volume, it defers to the proposer that took over.
      const back = await status((s) => s.some((m) => m.id === roleId(killed)));
      expect(back.find((m) => m.id === roleId(killed))?.role).toBe("proposer:passive");

      const paused = "a1";
      await member(paused).pause();
      await Promise.all([sleep(PAUSE_MS), acknowledgedMore(ledger, PROGRESS)]);
      expect(answering(await status(() => true))).not.toContain(roleId(paused));
      await member(paused).unpause();
      await caughtUp(paused);

      const cut = "l1";
      await member(cut).disconnect();
      expect(answering(await status(() => true))).not.toContain(roleId(cut));
      await acknowledgedMore(ledger, PROGRESS);
      await member(cut).reconnect();
      await caughtUp(cut);
    };
    const faulting = faults();
    await Promise.all([writeUntil(clients, "chaos", ledger, faulting), faulting]);
    expect(ledger.acknowledged.size).toBeGreaterThan(4 * PROGRESS);
  });

  it("no acknowledged write is lost", async () => {
    expect(await lostWrites(c.clients, ledger)).toEqual([]);
  });

  it("the learners converge: the same applied index and state digest; acceptors truncated what they checkpointed", async () => {
    const settled = await status((s) => {
      const learners = s.filter((m) => m.role === "learner");
      return (
        s.length === ALL.length &&
        learners.length === ROLES.learner.length &&
        new Set(learners.map((m) => m.appliedIndex)).size === 1 &&
        new Set(learners.map((m) => m.stateDigest)).size === 1
      );
    }, 60_000);
    const learners = settled.filter((m) => m.role === "learner");
    expect(learners.every((m) => m.stateDigest !== undefined)).toBe(true);
    // Every acknowledged write was chosen in a slot of its own and applied by both learners.
    expect(learners[0]?.appliedIndex).toBeGreaterThanOrEqual(ledger.acknowledged.size);
    expect(settled.filter((m) => m.role === "acceptor").some((m) => m.appliedIndex > 0)).toBe(true);
    // deploy/nats-server.conf lets every role do all it needs, also across its reconnects and restarts.
    for (const id of ALL) expect(refusedPublishes(await member(id).log())).toEqual([]);
  });
});
