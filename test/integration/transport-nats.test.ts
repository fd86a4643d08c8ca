import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DEFAULT_PREFIX,
  DROP_REASONS,
  type DropReason,
  ErrorCode,
  encodeFrame,
  type Inbound,
  isQuorateError,
  QuorateError,
} from "../../packages/core/src/index.js";
import { connectNats } from "../../packages/transport-nats/src/index.js";
import { CONTRACT_MAX_FRAME_BYTES, describeTransportContract } from "../contract/transport-contract.js";
import { type NatsCluster, type NatsServer, startNats, startNatsCluster } from "../harness/nats.js";
import { createNatsTransportGroup, type NatsTransportGroup } from "../harness/transport-group.js";

const CLUSTER = "it";
let server: NatsServer | undefined;

function theServer(): NatsServer {
  if (server === undefined) throw new Error("NATS server not started");
  return server;
}

beforeAll(async () => {
  server = await startNats();
});

afterAll(async () => {
  await server?.stop();
});

describeTransportContract("NATS, one server", (options) => createNatsTransportGroup([theServer()], options));

/** Opens a group, records every member's inbound frames, and closes it after the test body. */
async function withGroup(
  servers: readonly NatsServer[],
  members: string[],
  body: (group: NatsTransportGroup, inboxes: Inbound[][]) => Promise<void>,
): Promise<void> {
  const group = await createNatsTransportGroup(servers, {
    cluster: CLUSTER,
    group: `g_${Math.random().toString(36).slice(2, 10)}`,
    members,
    maxFrameBytes: CONTRACT_MAX_FRAME_BYTES,
  });
  const inboxes = group.transports.map((t) => {
    const inbox: Inbound[] = [];
    t.listen((m) => inbox.push(m));
    return inbox;
  });
  try {
    await body(group, inboxes);
  } finally {
    await group.close();
  }
}

/** Polls until `condition` holds, failing with `what` after `timeoutMs`. */
async function eventually(what: string, condition: () => boolean, timeoutMs = 30_000, tick?: () => void) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    tick?.();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const terms = (inbox: Inbound[], sender?: string) =>
  inbox.filter((m) => sender === undefined || m.sender === sender).map((m) => (m.body as { term: number }).term);

function droppedOnly(reason: DropReason, count: number): Record<DropReason, number> {
  const all = {} as Record<DropReason, number>;
  for (const r of DROP_REASONS) all[r] = r === reason ? count : 0;
  return all;
}

describe("NATS transport on one server", () => {
  const members = ["a", "b", "c", "d", "e"];

  it("delivers a broadcast to every member but the sender", async () => {
    await withGroup([theServer()], members, async (group, inboxes) => {
      group.transports[2]?.broadcast("raft.vote", { term: 4, lastLogIndex: 9, lastLogTerm: 3, preVote: true });
      await group.settle();
      inboxes.forEach((inbox, i) => {
        if (i === 2) expect(inbox).toEqual([]);
        else expect(inbox.map((m) => [m.sender, m.type, m.body])).toEqual([["c", "raft.vote", expect.any(Object)]]);
      });
    });
  });

  it("delivers a directed message only to its target", async () => {
    await withGroup([theServer()], members, async (group, inboxes) => {
      group.transports[0]?.send("d", "raft.timeout-now", { term: 2 });
      await group.settle();
      expect(inboxes.map((inbox) => inbox.length)).toEqual([0, 0, 0, 1, 0]);
      expect(inboxes[3]?.[0]).toMatchObject({ sender: "a", body: { term: 2 } });
    });
  });

  it("drops garbage published by a plain NATS client on a consensus subject, and keeps going", async () => {
    await withGroup([theServer()], ["n1", "n2"], async (group, inboxes) => {
      const outsider = await connectNats({ ...theServer().connectOptions(), name: "outsider" });
      try {
        const scope = `${DEFAULT_PREFIX}.${CLUSTER}.${group.transports[0]?.group}`;
        group.transports[1]?.send("n1", "raft.timeout-now", { term: 1 });
        outsider.publish(`${scope}.b.n2`, "not msgpack \u0000\u00ff");
        outsider.publish(`${scope}.d.n1.n2`, new Uint8Array([0xc1]));
        outsider.publish(`${scope}.d.n1.n2`, new Uint8Array(0));
        group.transports[1]?.send("n1", "raft.timeout-now", { term: 2 });
        await outsider.flush();
        await group.settle();
        expect(terms(inboxes[0] ?? [])).toEqual([1, 2]);
        expect(group.transports[0]?.stats.dropped).toEqual(droppedOnly("malformed", 3));
        expect(group.transports[0]?.stats.received).toBe(2);
      } finally {
        await outsider.close();
      }
    });
  });

  it("drops a frame claiming another sender as 'spoofed'", async () => {
    await withGroup([theServer()], ["n1", "n2", "n3"], async (group, inboxes) => {
      const groupName = group.transports[0]?.group ?? "";
      // Published on n3's subject, but the envelope says n2.
      group.injectRaw("n3", encodeFrame(CLUSTER, groupName, "n2", "raft.timeout-now", { term: 9 }), "n1");
      group.transports[1]?.send("n1", "raft.timeout-now", { term: 10 });
      await group.settle();
      expect(group.transports[0]?.stats.dropped).toEqual(droppedOnly("spoofed", 1));
      expect(inboxes[0]?.map((m) => [m.sender, m.body])).toEqual([["n2", { term: 10 }]]);
    });
  });

  it("fails with a Config error naming the server when the password is wrong", async () => {
    const { servers, user } = theServer().connectOptions();
    const error = await connectNats({ servers, user, pass: "wrong" }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(QuorateError);
    expect(isQuorateError(error, ErrorCode.Config) || isQuorateError(error, ErrorCode.Unreachable)).toBe(true);
    expect((error as QuorateError).message).toContain(servers);
    expect((error as QuorateError).message).toMatch(/rejected the credentials|authorization/i);
  });
});

describe("NATS transport across server restarts", () => {
  let own: NatsServer | undefined;
  beforeAll(async () => {
    own = await startNats();
  });
  afterAll(async () => {
    await own?.stop();
  });

  it("resumes traffic on the same transports after the server restarts", async () => {
    const natsServer = own as NatsServer;
    await withGroup([natsServer], ["n1", "n2", "n3"], async (group, inboxes) => {
      const [t1, t2] = group.transports;
      if (t1 === undefined || t2 === undefined) throw new Error("missing transports");
      t1.broadcast("raft.timeout-now", { term: 1 });
      await group.settle();
      expect(terms(inboxes[1] ?? [])).toEqual([1]);

      await natsServer.restart();

      // Frames sent while the client notices the restart may be lost (consensus retransmits);
      // keep sending until both kinds of traffic arrive again through the same objects.
      let term = 100;
      await eventually(
        "broadcast and directed traffic after the restart",
        () => terms(inboxes[2] ?? []).some((t) => t >= 100) && terms(inboxes[0] ?? []).some((t) => t >= 100),
        60_000,
        () => {
          t1.broadcast("raft.timeout-now", { term: term++ });
          t2.send("n1", "raft.timeout-now", { term: term++ });
        },
      );
      expect(t1.stats.sent).toBeGreaterThan(1);
      expect(t1.stats.sendErrors).toBe(0);
    });
  });

  it("resumes traffic after the server is paused and unpaused", async () => {
    const natsServer = own as NatsServer;
    await withGroup([natsServer], ["n1", "n2"], async (group, inboxes) => {
      const t1 = group.transports[0];
      if (t1 === undefined) throw new Error("missing transport");
      await natsServer.pause();
      t1.send("n2", "raft.timeout-now", { term: 1 });
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(inboxes[1]).toEqual([]);
      await natsServer.unpause();
      await group.settle();
      expect(terms(inboxes[1] ?? [])).toEqual([1]);
    });
  });
});

describe("NATS transport on a 3-server cluster", () => {
  let cluster: NatsCluster | undefined;
  beforeAll(async () => {
    cluster = await startNatsCluster(3);
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it("lets members on different servers exchange broadcast and directed messages", async () => {
    const servers = (cluster as NatsCluster).servers;
    await withGroup(servers, ["n1", "n2", "n3"], async (group, inboxes) => {
      group.transports.forEach((t, i) => {
        t.broadcast("raft.timeout-now", { term: i });
        t.send(`n${((i + 1) % 3) + 1}`, "raft.timeout-now", { term: 10 + i });
      });
      await group.settle();
      // Member i broadcasts term i and sends 10 + i to the next member.
      expect(terms(inboxes[0] ?? [])).toEqual(expect.arrayContaining([1, 2, 12]));
      expect(terms(inboxes[1] ?? [])).toEqual(expect.arrayContaining([0, 2, 10]));
      expect(terms(inboxes[2] ?? [])).toEqual(expect.arrayContaining([0, 1, 11]));
      expect(inboxes.map((inbox) => inbox.length)).toEqual([3, 3, 3]);
      for (const t of group.transports) expect(t.stats.dropped).toEqual(droppedOnly("malformed", 0));
    });
  });

  it("keeps the majority talking while one server is cut off from its peers, and heals", async () => {
    const natsCluster = cluster as NatsCluster;
    await withGroup(natsCluster.servers, ["n1", "n2", "n3"], async (group, inboxes) => {
      const [t1, t2, t3] = group.transports;
      if (t1 === undefined || t2 === undefined || t3 === undefined) throw new Error("missing transports");
      await natsCluster.disconnect(2);
      try {
        t1.broadcast("raft.timeout-now", { term: 1 });
        t2.send("n1", "raft.timeout-now", { term: 2 });
        t3.broadcast("raft.timeout-now", { term: 3 });
        await group.settle();
        expect(terms(inboxes[1] ?? [])).toEqual([1]);
        expect(terms(inboxes[0] ?? [])).toEqual([2]);
        expect(terms(inboxes[2] ?? [])).toEqual([]);
      } finally {
        await natsCluster.reconnect(2);
      }
      let term = 100;
      await eventually(
        "traffic to and from the member on the reconnected server",
        () => terms(inboxes[2] ?? [], "n1").length > 0 && terms(inboxes[0] ?? [], "n3").length > 0,
        90_000,
        () => {
          t1.broadcast("raft.timeout-now", { term: term++ });
          t3.send("n1", "raft.timeout-now", { term: term++ });
        },
      );
    });
  });
});
