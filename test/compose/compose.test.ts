import { execFile } from "node:child_process";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KvClient } from "../../packages/kv/src/nats.js";
import { connectNats, type NatsConnection } from "../../packages/transport-nats/src/index.js";
import { buildQuorateImage, removeQuorateImage } from "../harness/containers.js";
import { quorateCommand, waitForCluster } from "../harness/members.js";
import { freeLoopbackPort, natsImage } from "../harness/nats.js";
import { eventually } from "../harness/service.js";

/**
 * deploy/compose.yaml brought up as a user would, with Debian's docker-compose 1.29: three NATS
 * servers, the Raft cluster "prod" and the Paxos roles of "prod-paxos", on the quorate image built
 * from this checkout and the local NATS image. Jaeger cannot be pulled here (no Docker Hub), so
 * test/compose/tracing-stand-in.yaml replaces the tracing service with a local OTLP endpoint; the
 * compose file itself keeps Jaeger. The test writes and reads through both clusters as the
 * application user, sees the members' traces arrive and their Prometheus metrics served on the
 * published ports, and tears everything down.
 */

const REPO = resolve(import.meta.dirname, "../..");
const COMPOSE_FILES = ["-f", "deploy/compose.yaml", "-f", "test/compose/tracing-stand-in.yaml"];
const IMAGE = `quorate/quorate:compose-test-${process.pid}`;
const PROJECT = `quorate-compose-${process.pid}`;
/** deploy/compose.yaml's development default for the application user. */
const APP = { user: "app", pass: "app-dev-password" };

const run = promisify(execFile);

describe("deploy/compose.yaml with docker-compose 1.29", () => {
  const env: Record<string, string> = {};
  let nc: NatsConnection;
  let natsUrl: string;

  const compose = (...args: string[]) =>
    run("docker-compose", ["-p", PROJECT, ...COMPOSE_FILES, ...args], {
      cwd: REPO,
      env: { ...process.env, ...env },
      maxBuffer: 64 * 1024 * 1024,
    });

  beforeAll(async () => {
    // Never a skip: without docker-compose the test fails and says how to get it.
    const version = await run("docker-compose", ["version", "--short"]).catch((err: Error) => {
      throw new Error(
        "docker-compose is required for this test and was not found: `apt-get install -y docker-compose` " +
          `(Debian's 1.29; .ci/run installs it). Cause: ${err.message}`,
      );
    });
    expect(version.stdout.trim()).toMatch(/^1\.29\./);
    await buildQuorateImage(IMAGE);
    Object.assign(env, {
      QUORATE_IMAGE: IMAGE,
      NATS_IMAGE: natsImage(),
      NATS_PORT: String(await freeLoopbackPort()),
      NATS_MONITOR_PORT: String(await freeLoopbackPort()),
      N1_HEALTH_PORT: String(await freeLoopbackPort()),
      N2_HEALTH_PORT: String(await freeLoopbackPort()),
      N3_HEALTH_PORT: String(await freeLoopbackPort()),
      N1_METRICS_PORT: String(await freeLoopbackPort()),
      N2_METRICS_PORT: String(await freeLoopbackPort()),
      N3_METRICS_PORT: String(await freeLoopbackPort()),
      JAEGER_UI_PORT: String(await freeLoopbackPort()),
    });
    natsUrl = `nats://127.0.0.1:${env.NATS_PORT}`;
    await compose("up", "-d");
    // The servers take a moment after their containers start.
    nc = await eventually("NATS answers on the published port", () =>
      connectNats({ servers: natsUrl, ...APP, name: "compose-test" }),
    );
  });

  afterAll(async () => {
    await nc?.close();
    // Also when a test failed: nothing of the project is left behind, volumes included.
    await compose("down", "-v", "--remove-orphans", "--timeout", "10").catch(() => {});
    await removeQuorateImage(IMAGE);
  });

  it("the Raft cluster elects a leader and serves writes and reads", async () => {
    await waitForCluster(nc, "prod", (s) => s.length === 3 && s.some((m) => m.role === "leader"), 90_000);
    const client = await KvClient.connect({ nats: { servers: natsUrl, ...APP }, cluster: "prod", timeoutMs: 20_000 });
    try {
      const revision = await client.put("compose/raft", "written through compose");
      expect(revision).toBeGreaterThan(0);
      expect(await client.get("compose/raft")).toBe("written through compose");
    } finally {
      await client.close();
    }
    // The command line, as the compose file's header shows it.
    const quorate = quorateCommand("prod", { url: natsUrl, ...APP });
    expect(await quorate("kv", "get", "compose/raft")).toBe("written through compose\n");
  });

  it("the Paxos roles find an active proposer and serve writes and reads", async () => {
    await waitForCluster(
      nc,
      "prod-paxos",
      (s) => s.length === 7 && s.some((m) => m.role === "proposer:active"),
      90_000,
    );
    const client = await KvClient.connect({
      nats: { servers: natsUrl, ...APP },
      cluster: "prod-paxos",
      timeoutMs: 20_000,
    });
    try {
      await client.put("compose/paxos", "chosen through compose");
      expect(await client.get("compose/paxos")).toBe("chosen through compose");
    } finally {
      await client.close();
    }
  });

  it("members export their traces to the tracing service over OTLP", async () => {
    await eventually(
      "an OTLP trace export reaches the tracing service",
      async () =>
        (await compose("logs", "--no-color", "jaeger")).stdout.includes('"otlp":"/v1/traces"') ? true : undefined,
      60_000,
    );
  });

  it("each Raft member serves its metrics for Prometheus on its published port", async () => {
    for (const id of ["n1", "n2", "n3"]) {
      const port = env[`${id.toUpperCase()}_METRICS_PORT`];
      const text = await eventually(`${id}'s /metrics`, async () => {
        const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(2_000) });
        const body = await res.text();
        return body.includes(`quorate_member="${id}"`) ? body : undefined;
      });
      expect(text).toMatch(new RegExp(`quorate_term\\{[^}]*quorate_member="${id}"`));
    }
  });

  it("docker-compose down removes every container and volume of the project", async () => {
    await nc.close();
    await compose("down", "-v", "--remove-orphans", "--timeout", "10");
    const label = `label=com.docker.compose.project=${PROJECT}`;
    expect((await run("docker", ["ps", "-aq", "--filter", label])).stdout.trim()).toBe("");
    expect((await run("docker", ["volume", "ls", "-q", "--filter", label])).stdout.trim()).toBe("");
  });
});
