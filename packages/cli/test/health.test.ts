import { afterEach, describe, expect, it } from "vitest";
import {
  type HealthServer,
  MemberHealth,
  type MemberProbe,
  type ProbeResult,
  replicaNotReady,
  startHealthServer,
} from "../src/service/health.js";

describe("the health server", () => {
  let server: HealthServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  async function serve(liveness: ProbeResult, readiness: () => ProbeResult): Promise<string> {
    server = await startHealthServer({ port: 0, host: "127.0.0.1", checks: { liveness: () => liveness, readiness } });
    return `http://127.0.0.1:${server.port}`;
  }

  it("answers 200 or 503 with the reasons as JSON, live from the checks", async () => {
    let ready: ProbeResult = { ok: false, reasons: ["no leader known"], detail: { phase: "running" } };
    const base = await serve({ ok: true, reasons: [] }, () => ready);
    const live = await fetch(`${base}/livez`);
    expect(live.status).toBe(200);
    expect(live.headers.get("content-type")).toBe("application/json");
    expect(await live.json()).toEqual({ status: "ok", reasons: [] });
    const notReady = await fetch(`${base}/readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.json()).toEqual({ status: "unavailable", reasons: ["no leader known"], phase: "running" });
    ready = { ok: true, reasons: [] };
    expect((await fetch(`${base}/readyz?verbose`)).status).toBe(200);
  });

  it("answers HEAD without a body, 404 elsewhere and 405 to other methods", async () => {
    const base = await serve({ ok: true, reasons: [] }, () => ({ ok: true, reasons: [] }));
    const head = await fetch(`${base}/readyz`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
    expect((await fetch(`${base}/healthz`)).status).toBe(404);
    expect((await fetch(`${base}/livez`, { method: "POST" })).status).toBe(405);
  });

  it("reports a probe that throws as unavailable", async () => {
    const base = await serve({ ok: true, reasons: [] }, () => {
      throw new Error("boom");
    });
    const res = await fetch(`${base}/readyz`);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ reasons: ["probe failed: boom"] });
  });

  it("fails with a Config error when the port is taken", async () => {
    const base = await serve({ ok: true, reasons: [] }, () => ({ ok: true, reasons: [] }));
    const port = Number(new URL(base).port);
    await expect(
      startHealthServer({
        port,
        host: "127.0.0.1",
        checks: { liveness: () => ({ ok: true, reasons: [] }), readiness: () => ({ ok: true, reasons: [] }) },
      }),
    ).rejects.toMatchObject({ code: "QUORATE_CONFIG", message: `health port 127.0.0.1:${port} is already in use` });
  });
});

describe("member health through its life", () => {
  const probe = (failures: string[], notReady: string[]): MemberProbe => ({
    failures: () => failures,
    notReady: () => notReady,
    status: () => ({ role: "follower" }),
  });

  it("is live but not ready while waiting, starting and stopping", () => {
    const health = new MemberHealth();
    expect(health.readiness()).toMatchObject({ ok: false, reasons: ["starting"] });
    health.waitingForNats("nats://a:4222,nats://b:4222");
    expect(health.readiness().reasons).toEqual(["waiting for NATS at nats://a:4222,nats://b:4222"]);
    expect(health.liveness().ok).toBe(true);
    health.running(probe([], []));
    expect(health.readiness()).toMatchObject({ ok: true, reasons: [], detail: { member: { role: "follower" } } });
    health.stopping();
    expect(health.readiness()).toMatchObject({ ok: false, reasons: ["shutting down"] });
  });

  it("is not live once a role stopped on its own, and says why it is not ready", () => {
    const health = new MemberHealth();
    health.running(probe(["raft node stopped: disk full"], ["no leader known"]));
    expect(health.liveness()).toMatchObject({ ok: false, reasons: ["raft node stopped: disk full"] });
    expect(health.readiness().reasons).toEqual(["raft node stopped: disk full", "no leader known"]);
  });

  it("requires a known leader and everything committed applied", () => {
    expect(replicaNotReady({ leader: "n1", commitIndex: 7, appliedIndex: 7 })).toEqual([]);
    expect(replicaNotReady({ leader: null, commitIndex: 0, appliedIndex: 0 })).toEqual(["no leader known"]);
    expect(replicaNotReady({ leader: "n2", commitIndex: 9, appliedIndex: 4 })).toEqual([
      "catching up: applied 4 of 9 committed",
    ]);
    expect(replicaNotReady({ leader: null, commitIndex: 3, appliedIndex: 1 }, "active proposer")).toEqual([
      "no active proposer known",
      "catching up: applied 1 of 3 committed",
    ]);
  });
});
