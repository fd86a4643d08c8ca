import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KvClient } from "../../packages/kv/src/nats.js";
import { connectNats, type NatsConnection } from "../../packages/transport-nats/src/index.js";
import { memberSet, waitForCluster } from "../harness/members.js";
import { freeLoopbackPort, type NatsServer, startNats } from "../harness/nats.js";
import { eventually } from "../harness/service.js";

/**
 * `OTEL_METRICS_EXPORTER=prometheus`, as deploy/compose.yaml and deploy/k8s set it: a `quorate node`
 * process serves its metrics for Prometheus to scrape on OTEL_EXPORTER_PROMETHEUS_PORT, with no
 * collector (traces off), and the counters move as the member works.
 */

const CLUSTER = "itprom";

describe("metrics for Prometheus to scrape (OTEL_METRICS_EXPORTER=prometheus)", () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let cleanup: () => Promise<void>;
  let port: number;

  const scrape = async (): Promise<string> => {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(2_000) });
    expect(res.status).toBe(200);
    return res.text();
  };
  /** The value of `name`'s sample for this member, or undefined before it is exported. */
  const sample = (text: string, name: string): number | undefined => {
    const line = text.split("\n").find((l) => l.startsWith(`${name}{`) && l.includes('quorate_member="n1"'));
    return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
  };

  beforeAll(async () => {
    port = await freeLoopbackPort();
    nats = await startNats();
    nc = await connectNats({ ...nats.connectOptions(), name: "prometheus-test" });
    const set = memberSet({
      cluster: CLUSTER,
      ids: ["n1"],
      natsUrl: nats.url,
      user: nats.user,
      pass: nats.pass,
      env: {
        OTEL_METRICS_EXPORTER: "prometheus",
        OTEL_EXPORTER_PROMETHEUS_HOST: "127.0.0.1",
        OTEL_EXPORTER_PROMETHEUS_PORT: String(port),
        OTEL_TRACES_EXPORTER: "none",
      },
    });
    cleanup = set.cleanup;
    for (const m of set.members) m.start();
    await waitForCluster(nc, CLUSTER, (s) => s.length === 1 && s[0]?.role === "leader");
  });

  afterAll(async () => {
    await cleanup?.();
    await nc?.close();
    await nats?.stop();
  });

  it("serves the member's metrics on the configured port, and they count its work", async () => {
    const before = await eventually("the member's term is exported", async () => {
      const text = await scrape();
      return sample(text, "quorate_term") === undefined ? undefined : text;
    });
    expect(sample(before, "quorate_term")).toBeGreaterThanOrEqual(1);
    expect(before).toContain("# TYPE quorate_term gauge");
    const proposalsBefore = sample(before, "quorate_proposals_total") ?? 0;

    const client = await KvClient.connect({ nats: nats.connectOptions(), cluster: CLUSTER, timeoutMs: 20_000 });
    try {
      for (let i = 0; i < 5; i++) await client.put(`metrics/${i}`, "v");
    } finally {
      await client.close();
    }
    const after = await scrape();
    expect(sample(after, "quorate_proposals_total")).toBeGreaterThanOrEqual(proposalsBefore + 5);
    // The resource says whose metrics these are.
    expect(after).toMatch(/target_info\{[^}]*service_namespace="itprom"[^}]*\}/);
  });
});
