import { rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MemberStatus } from "../../packages/cli/src/index.js";
import { KvClient } from "../../packages/kv/src/nats.js";
import { connectNats, type NatsConnection } from "../../packages/transport-nats/src/index.js";
import { cliProcess, type MemberProcess, memberSet, quorateCommand, waitForCluster } from "../harness/members.js";
import { type NatsServer, startNats } from "../harness/nats.js";
import { acknowledgedMore, emptyLedger, lostWrites, writeUntil } from "../harness/write-load.js";

/**
 * Membership changes on a loaded cluster over real NATS, members as `quorate node` processes and
 * every change made with `quorate member ...` as an operator would: a 4th member joins and catches
 * up from a snapshot before it votes, a member is removed, another is wiped and added back, and
 * leadership moves, all while clients write. No acknowledged write may be lost, and every member
 * of the final configuration converges to the same state. Members serve reads from leader leases
 * (--lease-reads), so reading back every acknowledged write also checks leases across leader changes.
 */

const CLUSTER = "itmember";
/** Small, so that the log is compacted well before the new member arrives and it needs a snapshot. */
const SNAPSHOT_THRESHOLD = "200";

describe("Raft membership changes under load, over real NATS", () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let members: MemberProcess[];
  let cleanup: () => Promise<void>;
  let clients: KvClient[];
  const joiners = new Map<string, MemberProcess>();
  const ledger = emptyLedger();

  /** `quorate <args>` against the cluster; resolves with stdout, rejects with { code, stderr }. */
  const quorate = (...args: string[]) => quorateCommand(CLUSTER, nats)(...args);

  const failure = (promise: Promise<unknown>) =>
    promise.then(
      () => ({ code: 0, stderr: "" }),
      (e: { code: number; stderr: string }) => e,
    );

  /** A member started with --join: no configuration until the leader adds it. */
  const joiner = (id: string, dataDir: string): MemberProcess =>
    cliProcess(id, dataDir, [
      "node",
      ...["--protocol", "raft", "--cluster", CLUSTER, "--id", id, "--join", "--data", dataDir],
      ...["--snapshot-threshold", SNAPSHOT_THRESHOLD, "--lease-reads"],
      ...["--nats", nats.url, "--user", nats.user, "--password", nats.pass, "--log-level", "info"],
    ]);

  const memberList = async () =>
    JSON.parse(await quorate("member", "list", "--json")) as {
      leader: string;
      voters: string[];
      learners: string[];
      members: { id: string; kind: string }[];
    };

  /** Every voter answers, agrees on the configuration, has applied the leader's commit index and holds the same state. */
  const converged = async (voters: string[]): Promise<MemberStatus[]> => {
    const statuses = await waitForCluster(
      nc,
      CLUSTER,
      (s) => {
        const mine = s.filter((m) => voters.includes(m.id));
        const leader = mine.find((m) => m.role === "leader");
        return (
          leader !== undefined &&
          mine.length === voters.length &&
          mine.every(
            (m) =>
              m.appliedIndex === leader.appliedIndex &&
              [...(m.voters ?? [])].sort().join() === [...voters].sort().join(),
          )
        );
      },
      90_000,
    );
    return statuses.filter((m) => voters.includes(m.id));
  };

  beforeAll(async () => {
    nats = await startNats();
    nc = await connectNats({ ...nats.connectOptions(), name: "membership-test" });
    ({ members, cleanup } = memberSet({
      cluster: CLUSTER,
      ids: ["n1", "n2", "n3"],
      natsUrl: nats.url,
      user: nats.user,
      pass: nats.pass,
      protocolArgs: ["--protocol", "raft", "--snapshot-threshold", SNAPSHOT_THRESHOLD, "--lease-reads"],
    }));
    for (const m of members) m.start();
    await waitForCluster(nc, CLUSTER, (s) => s.length === 3 && s.some((m) => m.role === "leader"));
    clients = await Promise.all(
      Array.from({ length: 4 }, () =>
        KvClient.connect({ nats: nats.connectOptions(), cluster: CLUSTER, timeoutMs: 20_000 }),
      ),
    );
  });

  afterAll(async () => {
    await Promise.all((clients ?? []).map((c) => c.close()));
    await Promise.all([...joiners.values()].map((m) => m.kill()));
    await cleanup?.();
    await nc?.close();
    await nats?.stop();
  });

  it("refuses impossible changes with a clear error and a stable code", async () => {
    const existing = await failure(quorate("member", "add", "n1"));
    expect(existing.code).toBe(2);
    expect(existing.stderr).toContain("QUORATE_MEMBERSHIP");
    expect(existing.stderr).toContain("'n1' is already a voter");
    const stranger = await failure(quorate("member", "remove", "n9"));
    expect(stranger.stderr).toContain("'n9' is not a member");
    const unknown = await failure(quorate("member", "demote", "n1"));
    expect(unknown.stderr).toContain("usage: quorate member");
  });

  it("a 4th member joins a loaded cluster, catches up from a snapshot as a learner, then votes", async () => {
    await writeUntil(clients, "join", ledger, acknowledgedMore(ledger, 1000, 60_000));
    const dataDir = join(members[0]?.dataDir ?? "", "..", "n4");
    const n4 = joiner("n4", dataDir);
    joiners.set("n4", n4);
    n4.start();
    // Writes go on while it joins.
    let added = "";
    await writeUntil(
      clients,
      "joining",
      ledger,
      quorate("member", "add", "n4", "--json").then((out) => {
        added = out;
      }),
    );
    expect(JSON.parse(added)).toMatchObject({ voters: expect.arrayContaining(["n1", "n2", "n3", "n4"]), learners: [] });
    expect(n4.output()).toContain("installed a snapshot from the leader");
    const statuses = await converged(["n1", "n2", "n3", "n4"]);
    expect(new Set(statuses.map((m) => m.stateDigest)).size).toBe(1);
    const list = await memberList();
    expect(list.voters.sort()).toEqual(["n1", "n2", "n3", "n4"]);
    expect(await lostWrites(clients, ledger)).toEqual([]);
  });

  it("a member is removed under load, and the rest go on without it", async () => {
    const leader = (await memberList()).leader;
    const removed = ["n1", "n2", "n3", "n4"].find((id) => id !== leader) as string;
    await writeUntil(clients, "remove", ledger, quorate("member", "remove", removed));
    const list = await memberList();
    expect(list.voters).not.toContain(removed);
    expect(list.voters).toHaveLength(3);
    const process = members.find((m) => m.id === removed) ?? joiners.get(removed);
    expect(await process?.stop()).toBe(0);
    await converged(list.voters);
    expect(await lostWrites(clients, ledger)).toEqual([]);

    // Wiped and added back: it joins again from nothing.
    rmSync(process?.dataDir ?? "", { recursive: true, force: true });
    const fresh = joiner(removed, process?.dataDir ?? "");
    joiners.set(removed, fresh);
    fresh.start();
    await writeUntil(clients, "readd", ledger, quorate("member", "add", removed));
    const back = await memberList();
    expect(back.voters.sort()).toEqual(["n1", "n2", "n3", "n4"]);
    const statuses = await converged(back.voters);
    expect(new Set(statuses.map((m) => m.stateDigest)).size).toBe(1);
    expect(await lostWrites(clients, ledger)).toEqual([]);
  });

  it("leadership moves three times under load with no acknowledged write lost", async () => {
    const leaders: string[] = [];
    const transfers = (async () => {
      for (let i = 0; i < 3; i++) {
        const moved = JSON.parse(await quorate("leader", "transfer", "--json")) as { from: string; to: string };
        expect(moved.to).not.toBe(moved.from);
        leaders.push(moved.to);
      }
    })();
    const before = ledger.acknowledged.size;
    await writeUntil(clients, "transfer", ledger, transfers);
    await transfers;
    expect(leaders).toHaveLength(3);
    expect(ledger.acknowledged.size).toBeGreaterThan(before);
    const list = await memberList();
    const statuses = await converged(list.voters);
    expect(new Set(statuses.map((m) => m.stateDigest)).size).toBe(1);
    expect(await lostWrites(clients, ledger)).toEqual([]);
  });
});
