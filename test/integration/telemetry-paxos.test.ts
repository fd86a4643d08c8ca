import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { context, SpanKind, trace } from "@opentelemetry/api";
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MemberStatus } from "../../packages/cli/src/index.js";
import { KvClient } from "../../packages/kv/src/nats.js";
import { connectNats, type NatsConnection } from "../../packages/transport-nats/src/index.js";
import { cliProcess, type MemberProcess, waitForCluster } from "../harness/members.js";
import { type NatsServer, startNats } from "../harness/nats.js";
import { type OtlpReceiver, type OtlpSpan, otlpEnv, startOtlpReceiver } from "../harness/otlp.js";

/**
 * Multi-Paxos with every role in its own `quorate paxos <role>` process, each exporting over
 * OTLP/HTTP to a receiver in this test: a put is one trace from the client through a learner, the
 * active proposer's phase 2 and the acceptors' votes to the learners applying it, and every
 * process names itself `<cluster>-<id>` in namespace `<cluster>`.
 */

const CLUSTER = "itpaxostrace";
const ACCEPTORS = ["a1", "a2", "a3"];
const PROPOSERS = ["p1"];
const LEARNERS = ["l1", "l2"];

describe("OpenTelemetry across Paxos role processes", () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let root: string;
  let receiver: OtlpReceiver;
  const processes: MemberProcess[] = [];
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });

  beforeAll(async () => {
    provider.register();
    receiver = await startOtlpReceiver();
    nats = await startNats();
    nc = await connectNats({ ...nats.connectOptions(), name: "telemetry-paxos-test" });
    root = mkdtempSync(join(tmpdir(), "quorate-paxos-trace-"));
    const roles = [
      ...ACCEPTORS.map((id) => ["acceptor", id] as const),
      ...LEARNERS.map((id) => ["learner", id] as const),
      ...PROPOSERS.map((id) => ["proposer", id] as const),
    ];
    for (const [role, id] of roles) {
      const dataDir = join(root, id);
      const args = [
        ...["paxos", role, "--cluster", CLUSTER, "--id", id, "--data", dataDir, "--nats", nats.url],
        ...["--acceptors", ACCEPTORS.join(","), "--proposers", PROPOSERS.join(","), "--learners", LEARNERS.join(",")],
        ...["--user", nats.user, "--password", nats.pass, "--log-level", "info"],
      ];
      processes.push(cliProcess(id, dataDir, args, otlpEnv(receiver)));
    }
    for (const p of processes) p.start();
    const ready = (s: MemberStatus[]) =>
      s.length === 6 &&
      s.some((m) => m.role === "proposer:active") &&
      s.filter((m) => m.role === "learner").every((m) => m.leader !== null);
    await waitForCluster(nc, CLUSTER, ready);
  });

  afterAll(async () => {
    await Promise.all(processes.map((p) => p.kill()));
    if (root !== undefined) rmSync(root, { recursive: true, force: true });
    await nc?.close();
    await nats?.stop();
    receiver?.server.close();
    await provider.shutdown();
    trace.disable();
    context.disable();
  });

  it("a put is one trace through a learner, the proposer's phase 2, the acceptors and the learners", async () => {
    const client = await KvClient.connect({ nats: nats.connectOptions(), cluster: CLUSTER, timeoutMs: 20_000 });
    const app = trace.getTracer("app").startSpan("app.request", { kind: SpanKind.SERVER });
    await context.with(trace.setSpan(context.active(), app), () => client.put("traced", "value"));
    app.end();
    await client.close();
    const traceId = app.spanContext().traceId;

    const instance = (id: string) => `${CLUSTER}-${id}`;
    const acceptorInstances = new Set(ACCEPTORS.map(instance));
    const learnerInstances = new Set(LEARNERS.map(instance));
    const children = (spans: OtlpSpan[], name: string, parents: OtlpSpan[]) => {
      const ids = new Set(parents.map((p) => p.spanId));
      return spans.filter((s) => s.name === name && ids.has(s.parentSpanId ?? ""));
    };
    /** The put's chain, from the learner that served it to the acceptors' votes and the learners. */
    const putChain = (spans: OtlpSpan[]) => {
      const serve = spans.filter((s) => s.name === "kv.serve.put");
      const requests = children(spans, "publish paxos.request", serve);
      const phase2 = children(spans, "paxos.phase2", requests);
      const sends = children(spans, "publish paxos.p2a", phase2);
      const receipts = children(spans, "process paxos.p2a", sends);
      const on = (instances: Set<string>) =>
        new Set(receipts.filter((r) => instances.has(r.instance)).map((r) => r.instance));
      return { serve, requests, phase2, acceptors: on(acceptorInstances), learners: on(learnerInstances) };
    };
    // The session's open is a round of its own in the same trace; the put's spans arrive as each
    // ends (the phase 2 after its sends): wait for the put's whole chain, a phase-2 quorum of
    // acceptors' votes and the learner that took the request applying it.
    const complete = (spans: OtlpSpan[]) => {
      const chain = putChain(spans);
      return chain.acceptors.size >= 2 && chain.learners.size >= 1;
    };
    const deadline = Date.now() + 20_000;
    let inTrace: OtlpSpan[] = [];
    while (Date.now() < deadline) {
      inTrace = receiver.spans.filter((s) => s.traceId === traceId);
      if (complete(inTrace)) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const seen = JSON.stringify(inTrace.map((s) => [s.name, s.instance]));
    expect(complete(inTrace), seen).toBe(true);

    // Each step in the process of its role: the learner served the put and sent the request, the
    // proposer ran phase 2 as its child.
    const chain = putChain(inTrace);
    expect(chain.serve.every((s) => learnerInstances.has(s.instance))).toBe(true);
    expect(chain.requests.every((r) => learnerInstances.has(r.instance))).toBe(true);
    expect(chain.phase2.map((p) => p.instance)).toEqual(chain.phase2.map(() => instance("p1")));
    // Every process of the trace is one of the cluster's role processes, in the cluster's namespace.
    const all = new Set([...ACCEPTORS, ...PROPOSERS, ...LEARNERS].map(instance));
    const processesInTrace = new Set(inTrace.map((s) => s.instance));
    expect(
      [...processesInTrace].every((p) => all.has(p)),
      seen,
    ).toBe(true);
    expect(processesInTrace.size).toBeGreaterThanOrEqual(4);
    expect(new Set(inTrace.map((s) => s.namespace))).toEqual(new Set([CLUSTER]));
    // The client's own span (exported in this process) opened the trace.
    const local = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
    expect(local.map((s) => s.name)).toContain("kv.put");
  });

  it("every role exports consensus metrics", async () => {
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && !receiver.metricNames.has("quorate.commit.latency")) {
      await new Promise((r) => setTimeout(r, 200));
    }
    expect([...receiver.metricNames]).toEqual(expect.arrayContaining(["quorate.commit.latency", "quorate.term"]));
  });
});
