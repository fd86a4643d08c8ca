import type { Msg, NatsConnection, Subscription, SubscriptionOptions } from "@nats-io/transport-node";
import { ErrorCode, packValue, serviceErrorHeaders, unpackValue } from "@quorate/core";
import { toMsgHdrs } from "@quorate/transport-nats";
import { describe, expect, it } from "vitest";
import { memberEndpoints, ServiceName, serviceControlSubject, serviceInstanceId } from "../src/service/discovery.js";
import { countingConnection, EndpointCounters } from "../src/service/endpoints.js";
import { QUORATE_VERSION } from "../src/service/version.js";

/** A connection that records subscriptions, so tests can deliver messages to their callbacks. */
function fakeConnection() {
  const subscriptions = new Map<string, SubscriptionOptions | undefined>();
  const nc = {
    subscribe(subject: string, opts?: SubscriptionOptions): Subscription {
      subscriptions.set(subject, opts);
      return {} as Subscription;
    },
    getServer: () => "fake:4222",
  };
  return { nc: nc as unknown as NatsConnection, subscriptions };
}

function request(subject: string, data: Uint8Array, reply: string | undefined, sent: Uint8Array[]): Msg {
  return {
    subject,
    sid: 1,
    reply,
    data,
    headers: undefined,
    respond(payload) {
      sent.push(typeof payload === "string" ? new TextEncoder().encode(payload) : (payload ?? new Uint8Array(0)));
      return true;
    },
    json: () => JSON.parse(new TextDecoder().decode(data)),
    string: () => new TextDecoder().decode(data),
  };
}

describe("NATS micro subjects and ids", () => {
  it("builds the three control subjects of each verb", () => {
    expect(serviceControlSubject("PING")).toBe("$SRV.PING");
    expect(serviceControlSubject("INFO", ServiceName.raft)).toBe("$SRV.INFO.quorate-raft");
    expect(serviceControlSubject("STATS", ServiceName.acceptor, serviceInstanceId("prod", "a1-acceptor"))).toBe(
      "$SRV.STATS.quorate-paxos-acceptor.prod-a1-acceptor",
    );
  });

  it("reports the package's semantic version", () => {
    expect(QUORATE_VERSION).toMatch(/^\d+\.\d+\.\d+/);
    expect(QUORATE_VERSION).not.toBe("0.0.0");
  });

  it("describes a member's endpoints with the cluster's subjects", () => {
    const raft = memberEndpoints({ cluster: "prod", instance: "n1", servesKv: true, statusService: "status" });
    expect(raft.all.map((e) => e.info)).toEqual([
      { name: "kv", subject: "quorate.prod.rpc.kv", queue_group: "quorate-kv" },
      { name: "kv-direct", subject: "quorate.prod.rpc.kv.n1" },
      { name: "status", subject: "quorate.prod.rpc.status" },
    ]);
    const acceptor = memberEndpoints({
      cluster: "prod",
      instance: "a1-acceptor",
      servesKv: false,
      statusService: "status",
    });
    expect(acceptor.all.map((e) => e.info.name)).toEqual(["status"]);
  });
});

describe("endpoint counters", () => {
  it("count requests, failed replies and processing time in the micro stats shape", () => {
    const counters = new EndpointCounters({ name: "kv", subject: "quorate.c.rpc.kv", queue_group: "q" });
    expect(counters.stats()).toEqual({
      name: "kv",
      subject: "quorate.c.rpc.kv",
      queue_group: "q",
      num_requests: 0,
      num_errors: 0,
      last_error: "",
      processing_time: 0,
      average_processing_time: 0,
    });
    counters.received()(undefined);
    const failing = counters.received();
    const failed = toMsgHdrs(serviceErrorHeaders(ErrorCode.Busy, "failed"))?.headers;
    failing(failed);
    failing(failed); // a second reply to one request is not a second error
    const stats = counters.stats({ role: "leader" });
    expect(stats).toMatchObject({
      num_requests: 2,
      num_errors: 1,
      last_error: "QUORATE_BUSY: failed",
      data: { role: "leader" },
    });
    expect(stats.processing_time).toBeGreaterThan(0);
    expect(stats.average_processing_time).toBe(Math.round(stats.processing_time / 2));
  });

  it("count the KV service's requests through the connection it is given, and its replies with error headers as errors", () => {
    const { nc, subscriptions } = fakeConnection();
    const endpoints = memberEndpoints({ cluster: "c", instance: "n1", servesKv: true, statusService: "status" });
    const counted = countingConnection(nc, endpoints.all);
    const sent: Uint8Array[] = [];
    // A service that answers every request at once with whatever the request asked for, as the KV service
    // would: an error body with the NATS micro error headers.
    const echo = (_err: Error | null, msg: Msg) => {
      const reply = unpackValue(msg.data) as { ok: boolean; code?: ErrorCode; message?: string };
      const headers = reply.ok
        ? undefined
        : serviceErrorHeaders(reply.code ?? ErrorCode.Invariant, reply.message ?? "");
      msg.respond(msg.data, headers === undefined ? undefined : toMsgHdrs(headers));
    };
    counted.subscribe("quorate.c.rpc.kv", { queue: "quorate-kv", callback: echo });
    counted.subscribe("quorate.c.other", { callback: echo });
    expect(counted.getServer()).toBe("fake:4222");
    expect(subscriptions.get("quorate.c.rpc.kv")?.queue).toBe("quorate-kv");

    const deliver = (subject: string, data: Uint8Array, reply?: string) =>
      subscriptions.get(subject)?.callback?.(null, request(subject, data, reply, sent));
    deliver("quorate.c.rpc.kv", packValue({ ok: true, value: null }), "_INBOX.1");
    deliver("quorate.c.rpc.kv", packValue({ ok: false, code: "QUORATE_NOT_LEADER", message: "ask n2" }), "_INBOX.2");
    deliver("quorate.c.rpc.kv", packValue({ ok: true, value: null })); // no reply subject: not a request
    deliver("quorate.c.other", packValue({ ok: false }), "_INBOX.3");

    expect(sent).toHaveLength(4);
    expect(endpoints.kv?.stats()).toMatchObject({
      num_requests: 2,
      num_errors: 1,
      last_error: "QUORATE_NOT_LEADER: ask n2",
    });
    expect(endpoints.kvDirect?.stats().num_requests).toBe(0);
  });
});
