import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import {
  GenericContainer,
  getContainerRuntimeClient,
  StartedNetwork,
  type StartedTestContainer,
  Wait,
} from "testcontainers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KvClient } from "../../packages/kv/src/index.js";
import { waitForCluster } from "../harness/members.js";
import { freeLoopbackPort, HARNESS_LABEL, harnessOwner, OWNER_LABEL } from "../harness/nats.js";
import { type ConfiguredNats, startNatsWithConfig } from "../harness/nats-config.js";
import { eventually, probe } from "../harness/service.js";

const run = promisify(execFile);

/**
 * The container image end to end: deploy/node-local/build.sh builds a Node base from this
 * machine's node (no Docker Hub), deploy/build-image.sh the quorate image on it. Three Raft
 * members then run as containers on a Docker network with a NATS server secured by
 * deploy/nats-server.conf, configured only through the environment, as deploy/compose.yaml
 * runs them, hardened as deploy/k8s runs them (read-only root, no capabilities). `docker kill`
 * of the leader must not stop writes.
 */

const REPO = resolve(import.meta.dirname, "../..");
const BASE_IMAGE = "quorate/node-local:latest";
const IMAGE = "quorate/quorate:integration-test";
const RAFT = ["n1", "n2", "n3"];
const USERS = [...RAFT, "app"];

/** A container started as deploy/k8s starts members: read-only root filesystem. */
class ReadOnlyRootContainer extends GenericContainer {
  constructor(image: string) {
    super(image);
    this.hostConfig.ReadonlyRootfs = true;
  }
}

const labels = () => ({ [HARNESS_LABEL]: "quorate-image", [OWNER_LABEL]: harnessOwner() });

describe("the quorate container image", () => {
  let network: StartedNetwork;
  let nats: ConfiguredNats;
  let app: NatsConnection;
  const members = new Map<string, StartedTestContainer>();
  const healthPorts = new Map<string, number>();
  const passwords = new Map(USERS.map((u) => [u, `pw${randomBytes(12).toString("hex")}`]));
  const password = (user: string) => passwords.get(user) as string;

  beforeAll(async () => {
    await run("bash", [resolve(REPO, "deploy/node-local/build.sh"), BASE_IMAGE], { cwd: REPO });
    await run("bash", [resolve(REPO, "deploy/build-image.sh"), IMAGE], {
      cwd: REPO,
      env: { ...process.env, BASE_IMAGE },
    });

    const client = await getContainerRuntimeClient();
    const name = `quorate-image-${harnessOwner()}-${Date.now().toString(36)}`;
    network = new StartedNetwork(
      client,
      name,
      await client.network.create({ Name: name, Driver: "bridge", Labels: labels() }),
    );
    nats = await startNatsWithConfig({
      configFile: resolve(REPO, "deploy/nats-server.conf"),
      // Only the Raft users and the application user log in here; the others need some value.
      env: Object.fromEntries(
        ["n1", "n2", "n3", "a1", "a2", "a3", "p1", "p2", "l1", "l2", "app"].map((u) => [
          `${u.toUpperCase()}_PASSWORD`,
          `"${passwords.get(u) ?? "unused"}"`,
        ]),
      ),
      network: { network, alias: "nats" },
    });
    app = await connect({ servers: nats.url, user: "app", pass: password("app"), name: "image-test-app" });
    await Promise.all(
      RAFT.map(async (id) => {
        const port = await freeLoopbackPort();
        healthPorts.set(id, port);
        const container = await new ReadOnlyRootContainer(IMAGE)
          .withNetwork(network)
          .withNetworkAliases(id)
          .withLabels(labels())
          .withDroppedCapabilities("ALL")
          .withSecurityOpt("no-new-privileges")
          .withEnvironment({
            QUORATE_PROTOCOL: "raft",
            QUORATE_CLUSTER: "prod",
            QUORATE_ID: id,
            QUORATE_PEERS: RAFT.join(","),
            NATS_URL: "nats://nats:4222",
            QUORATE_USER: id,
            QUORATE_PASSWORD: password(id),
          })
          .withExposedPorts({ container: 8080, host: port })
          .withWaitStrategy(Wait.forLogMessage(/"member running"/))
          .withStartupTimeout(60_000)
          .start();
        members.set(id, container);
      }),
    );
  });

  afterAll(async () => {
    await app?.close();
    await Promise.allSettled([...members.values()].map((m) => m.stop({ timeout: 1_000 })));
    await nats?.stop();
    await network?.stop().catch(() => {});
    // Each run builds it afresh; keeping old ones would only fill the disk.
    const client = await getContainerRuntimeClient();
    await client.container.dockerode
      .getImage(IMAGE)
      .remove()
      .catch(() => {});
  });

  it("is small, runs as uid 1000 on a read-only root, and its HEALTHCHECK passes", async () => {
    const client = await getContainerRuntimeClient();
    const image = await client.container.dockerode.getImage(IMAGE).inspect();
    // The runtime holds node and the production dependencies, not the workspace's dev tooling.
    expect(image.Size).toBeLessThan(250_000_000);
    expect(image.Config.User).toBe("1000:1000");
    const n1 = members.get("n1") as StartedTestContainer;
    const uid = await n1.exec(["node", "-e", "process.stdout.write(String(process.getuid()))"]);
    expect(uid.output).toBe("1000");
    const check = image.Config.Healthcheck?.Test ?? [];
    expect(check[0]).toBe("CMD");
    expect((await n1.exec(check.slice(1))).exitCode).toBe(0);
  });

  it("three members in containers elect a leader and each reports ready", async () => {
    await waitForCluster(app, "prod", (s) => s.length === 3 && s.some((m) => m.role === "leader"));
    for (const id of RAFT) {
      const ready = await eventually(`${id} ready`, async () => {
        const r = await probe(healthPorts.get(id) as number, "/readyz");
        return r.status === 200 ? r : undefined;
      });
      expect(ready.body.status).toBe("ok");
    }
  });

  it("docker kill of the leader: a new leader is elected and writes continue", async () => {
    const kv = await KvClient.connect({
      nats: { servers: nats.url, user: "app", pass: password("app") },
      cluster: "prod",
      timeoutMs: 20_000,
    });
    try {
      await kv.put("before", "1");
      const status = await waitForCluster(app, "prod", (s) => s.some((m) => m.role === "leader"));
      const leader = status.find((m) => m.role === "leader")?.id as string;
      const client = await getContainerRuntimeClient();
      await client.container.dockerode.getContainer((members.get(leader) as StartedTestContainer).getId()).kill();
      for (let i = 0; i < 5; i++) await kv.put(`after-${i}`, String(i));
      const after = await waitForCluster(app, "prod", (s) => s.some((m) => m.role === "leader" && m.id !== leader));
      expect(after.map((m) => m.id)).not.toContain(leader);
      expect(await kv.get("before")).toBe("1");
      expect(await kv.get("after-4")).toBe("4");
    } finally {
      await kv.close();
    }
  });
});
