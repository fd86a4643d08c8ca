import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  type ConsensusNode,
  ErrorCode,
  packValue,
  QuorateError,
  rpcSubject,
  SERVICE_ERROR_CODE_HEADER,
  SERVICE_ERROR_HEADER,
  unpackValue,
} from "../../packages/core/src/index.js";
import { KvStateMachine } from "../../packages/kv/src/index.js";
import { createKvService, KV_JSON_CONTENT_TYPE, KvClient, type KvClientOptions } from "../../packages/kv/src/nats.js";
import { type SessionLimits, SessionStateMachine } from "../../packages/service/src/index.js";
import { connectNats, type NatsConnection, toMsgHdrs } from "../../packages/transport-nats/src/index.js";
import { type NatsServer, startNats } from "../harness/nats.js";

/** Counts commands that reach the KV map, to prove a retried write is applied once. */
class CountingKv extends KvStateMachine {
  applied = 0;
  override apply(command: Uint8Array, index: number): Uint8Array {
    this.applied++;
    return super.apply(command, index);
  }
}

interface Behaviour {
  /** Decides what a proposal does; `apply` applies it to this member's state machine now. */
  propose?: (command: Uint8Array, apply: () => Uint8Array) => Promise<Uint8Array>;
  readBarrier?: () => Promise<void>;
}

/** A single-member "consensus": commands apply as soon as they are proposed, unless a behaviour says otherwise. */
class FakeNode implements ConsensusNode {
  readonly store = new CountingKv();
  readonly machine: SessionStateMachine;
  proposals = 0;
  #index = 0;

  constructor(
    readonly id: string,
    private readonly behaviour: Behaviour = {},
    limits: Partial<SessionLimits> = {},
  ) {
    this.machine = new SessionStateMachine(this.store, limits);
  }

  leader(): string | null {
    return this.id;
  }

  propose(command: Uint8Array): Promise<Uint8Array> {
    this.proposals++;
    const apply = () => this.machine.apply(command, ++this.#index);
    return this.behaviour.propose ? this.behaviour.propose(command, apply) : Promise.resolve(apply());
  }

  readBarrier(): Promise<void> {
    return this.behaviour.readBarrier?.() ?? Promise.resolve();
  }

  get appliedIndex(): number {
    return this.#index;
  }
}

const isOpen = (command: Uint8Array) => "open" in (unpackValue(command) as object);
const never = () => new Promise<never>(() => {});
const notLeader = (leader: string) => () =>
  Promise.reject(new QuorateError(ErrorCode.NotLeader, "not the leader", { leader }));

let server: NatsServer;
let clusterSeq = 0;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  server = await startNats();
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
});

afterAll(async () => {
  await server?.stop();
});

async function connection(): Promise<NatsConnection> {
  const nc = await connectNats(server.connectOptions());
  cleanups.push(() => nc.close());
  return nc;
}

/** A fresh cluster name per test, so services of one test never answer another's requests. */
function freshCluster(): string {
  clusterSeq++;
  return `kv${clusterSeq}`;
}

async function serve(cluster: string, node: FakeNode, steerTo?: () => string): Promise<void> {
  const service = createKvService({
    nc: await connection(),
    cluster,
    node,
    store: node.store,
    ...(steerTo === undefined ? {} : { steerTo }),
  });
  cleanups.push(() => service.close());
}

async function client(cluster: string, options: Partial<KvClientOptions> = {}): Promise<KvClient> {
  const kv = await KvClient.connect({ nats: await connection(), cluster, ...options });
  cleanups.push(() => kv.close());
  return kv;
}

async function rejection(promise: Promise<unknown>): Promise<QuorateError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof QuorateError) return err;
    throw err;
  }
  throw new Error("expected a rejection");
}

describe("KV service and client over NATS", () => {
  it("puts, gets, deletes and compares-and-sets, keeping strings and bytes apart", async () => {
    const cluster = freshCluster();
    await serve(cluster, new FakeNode("n1"));
    const kv = await client(cluster);

    expect(await kv.get("k")).toBeNull();
    await kv.put("k", "v1");
    expect(await kv.get("k")).toBe("v1");
    expect(await kv.cas("k", "other", "x")).toBe(false);
    expect(await kv.cas("k", "v1", new Uint8Array([1, 2, 3]))).toBe(true);
    const stored = await kv.get("k");
    expect(stored).toBeInstanceOf(Uint8Array);
    expect(Buffer.isBuffer(stored)).toBe(false);
    expect([...(stored as Uint8Array)]).toEqual([1, 2, 3]);
    expect(await kv.cas("k", "\u0001\u0002\u0003", "x")).toBe(false);
    expect(await kv.delete("k")).toBe(true);
    expect(await kv.delete("k")).toBe(false);
    expect(await kv.cas("k", null, "fresh")).toBe(true);
    expect(await kv.get("k")).toBe("fresh");
  });

  it("keeps concurrent writes of one client deduplicated and all applied", async () => {
    const cluster = freshCluster();
    const node = new FakeNode("n1");
    await serve(cluster, node);
    const kv = await client(cluster);
    await Promise.all(Array.from({ length: 50 }, (_, i) => kv.put(`k${i}`, `v${i}`)));
    expect(node.store.applied).toBe(50);
    expect(await Promise.all(Array.from({ length: 50 }, (_, i) => kv.get(`k${i}`)))).toEqual(
      Array.from({ length: 50 }, (_, i) => `v${i}`),
    );
  });

  it("throws Config at once for a bad key or value, without a request", async () => {
    const cluster = freshCluster();
    const node = new FakeNode("n1");
    await serve(cluster, node);
    const kv = await client(cluster);
    expect((await rejection(kv.put("", "v"))).code).toBe(ErrorCode.Config);
    expect((await rejection(kv.get("k".repeat(1025)))).code).toBe(ErrorCode.Config);
    expect((await rejection(kv.put("k", 42 as unknown as string))).code).toBe(ErrorCode.Config);
    expect(node.proposals).toBe(0);
  });

  it("a member that is not the leader forwards to the leader", async () => {
    const cluster = freshCluster();
    const leader = new FakeNode("n1");
    const follower = new FakeNode("n2", { propose: notLeader("n1"), readBarrier: notLeader("n1") });
    await serve(cluster, leader);
    await serve(cluster, follower);

    // Straight to the follower's member subject: it must forward.
    const nc = await connection();
    const reply = await nc.request(rpcSubject({ cluster }, "kv", "n2"), packValue({ op: "open", name: "raw" }), {
      timeout: 5_000,
    });
    expect(unpackValue(reply.data)).toMatchObject({ ok: true });
    expect(follower.proposals).toBe(1);
    expect(leader.proposals).toBe(1);

    // Through the queue group whichever member gets the first request, it succeeds; the reply
    // names the member that served it, and the client sends the rest straight to that leader.
    const kv = await client(cluster);
    await kv.put("k0", "v0");
    const followerBefore = follower.proposals;
    for (let i = 1; i < 20; i++) await kv.put(`k${i}`, `v${i}`);
    expect(await kv.get("k19")).toBe("v19");
    expect(leader.store.applied).toBe(20);
    expect(follower.proposals).toBe(followerBefore);
  });

  it("falls back to the queue group when the leader it knew stops answering", async () => {
    const cluster = freshCluster();
    let n2Leads = false;
    const n1 = new FakeNode("n1");
    const n2 = new FakeNode("n2", {
      propose: (_command, apply) => (n2Leads ? Promise.resolve(apply()) : notLeader("n1")()),
      readBarrier: () => (n2Leads ? Promise.resolve() : notLeader("n1")()),
    });
    const n1Service = createKvService({ nc: await connection(), cluster, node: n1, store: n1.store });
    await serve(cluster, n2);
    const kv = await client(cluster);
    await kv.put("a", "1");
    expect(n1.store.applied).toBe(1);
    // n1 goes away and n2 takes over: the client's direct requests to n1 find no responder.
    await n1Service.close();
    n2Leads = true;
    await kv.put("b", "2");
    expect(n2.store.applied).toBe(1);
    expect(await kv.get("b")).toBe("2");
  });

  it("stops forwarding after two hops and answers NotLeader", async () => {
    const cluster = freshCluster();
    const a = new FakeNode("n1", { propose: notLeader("n2"), readBarrier: notLeader("n2") });
    const b = new FakeNode("n2", { propose: notLeader("n1"), readBarrier: notLeader("n1") });
    await serve(cluster, a);
    await serve(cluster, b);

    const nc = await connection();
    const reply = await nc.request(rpcSubject({ cluster }, "kv", "n1"), packValue({ op: "get", key: "k" }), {
      timeout: 5_000,
    });
    expect(unpackValue(reply.data)).toMatchObject({ ok: false, code: ErrorCode.NotLeader });
    // The NATS micro error headers travel back through both forwarding hops with the body.
    expect(reply.headers?.get(SERVICE_ERROR_HEADER)).toMatch(/^QUORATE_NOT_LEADER: /);
    expect(reply.headers?.get(SERVICE_ERROR_CODE_HEADER)).toBe("503");

    // The client keeps retrying until its deadline, then reports the definite error.
    const kv = await client(cluster, { timeoutMs: 800 });
    expect((await rejection(kv.get("k"))).code).toBe(ErrorCode.NotLeader);
  });

  it("answers a malformed request with Rejected", async () => {
    const cluster = freshCluster();
    const node = new FakeNode("n1");
    await serve(cluster, node);
    const nc = await connection();
    for (const body of [
      new Uint8Array([0xc1]),
      packValue({ op: "put", key: "k", value: "v" }), // a write without a session
      packValue({ op: "get", key: "" }),
    ]) {
      const reply = await nc.request(rpcSubject({ cluster }, "kv"), body, { timeout: 5_000 });
      expect(unpackValue(reply.data)).toMatchObject({ ok: false, code: ErrorCode.Rejected });
    }
    expect(node.proposals).toBe(0);
  });

  it("answers JSON requests (Content-Type: application/json) in JSON, bytes as { bytes: base64 }", async () => {
    const cluster = freshCluster();
    await serve(cluster, new FakeNode("n1"));
    const nc = await connection();
    const json = async (request: object, subject = rpcSubject({ cluster }, "kv")) => {
      const reply = await nc.request(subject, JSON.stringify(request), {
        timeout: 5_000,
        headers: toMsgHdrs({ "Content-Type": KV_JSON_CONTENT_TYPE })?.headers,
      });
      expect(reply.headers?.get("Content-Type")).toBe(KV_JSON_CONTENT_TYPE);
      return { body: reply.json<Record<string, unknown>>(), headers: reply.headers };
    };
    const opened = await json({ op: "open", name: "json-client" });
    expect(opened.body).toMatchObject({ ok: true, value: expect.any(String) });
    const client = opened.body.value as string;
    const session = (seq: number) => ({ client, seq, firstUnacked: seq });
    // A put answers with its revision: the index it was applied at.
    expect((await json({ op: "put", key: "s", value: "text", session: session(1) })).body).toEqual({
      ok: true,
      value: expect.any(Number),
      servedBy: "n1",
    });
    expect((await json({ op: "put", key: "b", value: { bytes: "AQID" }, session: session(2) })).body).toMatchObject({
      ok: true,
    });
    expect((await json({ op: "get", key: "s" })).body).toMatchObject({ ok: true, value: "text" });
    expect((await json({ op: "get", key: "b" })).body).toMatchObject({ ok: true, value: { bytes: "AQID" } });
    const swapped = await json({ op: "cas", key: "b", expected: { bytes: "AQID" }, value: "x", session: session(3) });
    expect(swapped.body).toMatchObject({ ok: true, value: true });

    // The same store through the msgpack client: bytes stay bytes, strings strings.
    const kv = await KvClient.connect({ nats: nc, cluster });
    expect(await kv.get("b")).toBe("x");
    await kv.put("m", new Uint8Array([255]));
    await kv.close();
    expect((await json({ op: "get", key: "m" })).body).toMatchObject({ ok: true, value: { bytes: "/w==" } });

    const refused = await json({ op: "get" });
    expect(refused.body).toMatchObject({ ok: false, code: ErrorCode.Rejected });
    expect(refused.headers?.get(SERVICE_ERROR_CODE_HEADER)).toBe("400");
    expect(
      (
        await nc.request(rpcSubject({ cluster }, "kv"), "{not json", {
          timeout: 5_000,
          headers: toMsgHdrs({ "Content-Type": KV_JSON_CONTENT_TYPE })?.headers,
        })
      ).json(),
    ).toMatchObject({ ok: false, code: ErrorCode.Rejected });
  });

  it("forwards a JSON request to the leader in JSON and relays its JSON reply", async () => {
    const cluster = freshCluster();
    await serve(cluster, new FakeNode("n1", { readBarrier: notLeader("n2") }));
    await serve(cluster, new FakeNode("n2"));
    const nc = await connection();
    const reply = await nc.request(rpcSubject({ cluster }, "kv", "n1"), JSON.stringify({ op: "get", key: "k" }), {
      timeout: 5_000,
      headers: toMsgHdrs({ "Content-Type": KV_JSON_CONTENT_TYPE })?.headers,
    });
    expect(reply.json()).toEqual({ ok: true, value: null, servedBy: "n2" });
    expect(reply.headers?.get("Content-Type")).toBe(KV_JSON_CONTENT_TYPE);
  });

  it("steerTo names where a successful reply sends the client's next requests (a Paxos learner: the leader's)", async () => {
    const cluster = freshCluster();
    await serve(cluster, new FakeNode("n1-learner"), () => "n2-learner");
    const nc = await connection();
    const reply = await nc.request(
      rpcSubject({ cluster }, "kv", "n1-learner"),
      JSON.stringify({ op: "get", key: "k" }),
      {
        timeout: 5_000,
        headers: toMsgHdrs({ "Content-Type": KV_JSON_CONTENT_TYPE })?.headers,
      },
    );
    expect(reply.json()).toEqual({ ok: true, value: null, servedBy: "n2-learner" });
  });

  it("a write whose reply is lost is retried with the same seq and applied once", async () => {
    const cluster = freshCluster();
    let dropped = false;
    const node = new FakeNode("n1", {
      propose: async (command, apply) => {
        const result = apply();
        if (isOpen(command) || dropped) return result;
        dropped = true;
        return never(); // applied, but the reply never comes
      },
    });
    await serve(cluster, node);
    const kv = await client(cluster, { requestTimeoutMs: 300 });

    // Without deduplication the retry would find the key present and answer false.
    expect(await kv.cas("k", null, "v")).toBe(true);
    expect(node.store.applied).toBe(1);
    expect(node.proposals).toBe(3); // open, lost attempt, retry
  });

  it("a write whose first attempt is delayed past the retry is applied once", async () => {
    const cluster = freshCluster();
    let delayed: Promise<unknown> | undefined;
    const node = new FakeNode("n1", {
      propose: async (command, apply) => {
        if (isOpen(command) || delayed !== undefined) return apply();
        const late = new Promise<Uint8Array>((resolve) => setTimeout(() => resolve(apply()), 800));
        delayed = late;
        return late;
      },
    });
    await serve(cluster, node);
    const kv = await client(cluster, { requestTimeoutMs: 300 });

    expect(await kv.cas("k", null, "v")).toBe(true);
    await delayed; // the first attempt commits after the retry did
    expect(node.store.applied).toBe(1);
    expect(node.store.read("k")).toBe("v");
  });

  it("throws Indeterminate when no attempt gets an answer before the deadline", async () => {
    const cluster = freshCluster();
    const node = new FakeNode("n1", {
      propose: async (command, apply) => (isOpen(command) ? apply() : never()),
    });
    await serve(cluster, node);
    const kv = await client(cluster, { timeoutMs: 1_500, requestTimeoutMs: 400 });

    const started = performance.now();
    const err = await rejection(kv.put("k", "v"));
    expect(err.code).toBe(ErrorCode.Indeterminate);
    expect(performance.now() - started).toBeGreaterThanOrEqual(1_000);
    expect(node.proposals).toBeGreaterThan(2);
  });

  it("throws the definite error when every attempt definitely failed", async () => {
    const cluster = freshCluster();
    const noQuorum = () => Promise.reject(new QuorateError(ErrorCode.NoQuorum, "no quorum"));
    const node = new FakeNode("n1", {
      propose: async (command, apply) => (isOpen(command) ? apply() : noQuorum()),
      readBarrier: noQuorum,
    });
    await serve(cluster, node);
    const kv = await client(cluster, { timeoutMs: 600 });

    expect((await rejection(kv.put("k", "v"))).code).toBe(ErrorCode.NoQuorum);
    expect((await rejection(kv.get("k"))).code).toBe(ErrorCode.NoQuorum);
    expect(node.proposals).toBeGreaterThan(2);
  });

  it("throws Unreachable, not Indeterminate, when no service answers the subject", async () => {
    const kv = await client(freshCluster(), { timeoutMs: 500 });
    expect((await rejection(kv.put("k", "v"))).code).toBe(ErrorCode.Unreachable);
    expect((await rejection(kv.get("k"))).code).toBe(ErrorCode.Unreachable);
  });

  it("with failWithoutResponders, throws Unreachable at once instead of retrying until the deadline", async () => {
    const kv = await client(freshCluster(), { timeoutMs: 10_000, failWithoutResponders: true });
    const started = performance.now();
    expect((await rejection(kv.get("k"))).code).toBe(ErrorCode.Unreachable);
    expect((await rejection(kv.put("k", "v"))).code).toBe(ErrorCode.Unreachable);
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it("opens a new session and retries when the session expired", async () => {
    const cluster = freshCluster();
    const node = new FakeNode("n1", {}, { maxSessions: 1 });
    await serve(cluster, node);
    const first = await client(cluster);
    const second = await client(cluster);
    await first.put("a", "1");
    await second.put("b", "2"); // opens a session, evicting the first client's
    await first.put("a", "3");
    expect(await second.get("a")).toBe("3");
    expect(node.store.applied).toBe(3);
    // Two opens and a write each, then the refused attempt, the new open and the retry.
    expect(node.proposals).toBe(7);
  });

  it("owns and closes a connection it made, and leaves a given one open", async () => {
    const cluster = freshCluster();
    await serve(cluster, new FakeNode("n1"));
    const owned = await KvClient.connect({ nats: server.connectOptions(), cluster });
    await owned.put("k", "v");
    await owned.close();
    expect((await rejection(owned.get("k"))).code).toBe(ErrorCode.Closed);

    const nc = await connection();
    const borrowed = await KvClient.connect({ nats: nc, cluster });
    expect(await borrowed.get("k")).toBe("v");
    await borrowed.close();
    expect(nc.isClosed()).toBe(false);
  });
});
