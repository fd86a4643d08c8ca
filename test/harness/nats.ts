import { connect, createServer } from "node:net";
import { NatsContainer, type StartedNatsContainer } from "@testcontainers/nats";
import { getContainerRuntimeClient, StartedNetwork } from "testcontainers";
import { connectNats } from "../../packages/transport-nats/src/index.js";
import { waitForInterest } from "./transport-group.js";

/**
 * NATS servers in containers for integration tests. Everything started here carries the
 * harness labels, so `removeHarnessContainers` can clean up after a run even though Ryuk
 * (which needs Docker Hub) is disabled.
 */

// Ryuk would be pulled from Docker Hub; we stop what we start instead.
process.env.TESTCONTAINERS_RYUK_DISABLED ??= "true";

/** Marks every container and network the harness creates. */
export const HARNESS_LABEL = "dev.quorate.harness";
/** The pid of the test run that owns a container; set by global-setup for its workers. */
export const OWNER_LABEL = "dev.quorate.harness.owner";
export const OWNER_ENV = "QUORATE_HARNESS_OWNER";

/** The official image by default; CI machines without Docker Hub set a locally built one. */
export function natsImage(): string {
  return process.env.QUORATE_NATS_IMAGE ?? "nats:2.10-alpine";
}

export function harnessOwner(): string {
  return process.env[OWNER_ENV] ?? String(process.pid);
}

function labels(): Record<string, string> {
  return { [HARNESS_LABEL]: "nats", [OWNER_LABEL]: harnessOwner() };
}

export interface NatsServer {
  /** `nats://127.0.0.1:<port>`; the port is fixed, so the URL survives `restart()`. */
  readonly url: string;
  readonly user: string;
  readonly pass: string;
  connectOptions(): { servers: string; user: string; pass: string };
  /** Restarts the server process: clients see a disconnect and must reconnect to the same URL. */
  restart(): Promise<void>;
  /** Freezes the server (SIGSTOP-like): connections stay open but nothing is answered. */
  pause(): Promise<void>;
  unpause(): Promise<void>;
  stop(): Promise<void>;
}

export interface NatsCluster {
  readonly servers: NatsServer[];
  /**
   * Cuts server `i` off the cluster network: its routes to the other servers break. Clients
   * reach servers through host ports on Docker's default bridge, so they stay connected to it,
   * cut off from members on the other servers, as in a real partition of that server.
   */
  disconnect(i: number): Promise<void>;
  /** Reattaches server `i` with its network alias; routes re-form within a few seconds. */
  reconnect(i: number): Promise<void>;
  stop(): Promise<void>;
}

/** Starts one server with user/pass `test`/`test` on a fixed loopback port. */
export async function startNats(options: { jetstream?: boolean } = {}): Promise<NatsServer> {
  return startServer((container) => (options.jetstream ? container.withJetStream() : container));
}

/** Starts `size` servers with full-mesh routes (and JetStream by default) on a private network. */
export async function startNatsCluster(size = 3, options: { jetstream?: boolean } = {}): Promise<NatsCluster> {
  if (!Number.isInteger(size) || size < 1 || size > 9) throw new RangeError(`cluster size 1..9, got ${size}`);
  const client = await getContainerRuntimeClient();
  const name = `quorate-nats-${harnessOwner()}-${Date.now().toString(36)}`;
  const dockerNetwork = await client.network.create({ Name: name, Driver: "bridge", Labels: labels() });
  const network = new StartedNetwork(client, name, dockerNetwork);
  const aliases = Array.from({ length: size }, (_, i) => `n${i + 1}`);
  const routes = aliases.map((alias) => `nats://${alias}:6222`).join(",");
  const servers: StartedServer[] = [];
  try {
    const started = await Promise.allSettled(
      aliases.map((alias) =>
        startServer((container) => {
          container
            .withNetwork(network)
            .withNetworkAliases(alias)
            .withArg("--server_name", alias)
            .withArg("--cluster_name", "quorate-test")
            .withArg("--cluster", "nats://0.0.0.0:6222")
            .withArg("--routes", routes);
          return options.jetstream === false ? container : container.withJetStream();
        }),
      ),
    );
    for (const result of started) if (result.status === "fulfilled") servers.push(result.value);
    const failed = started.find((result) => result.status === "rejected");
    if (failed !== undefined) throw failed.reason;
    await waitForRoutes(servers);
  } catch (err) {
    await Promise.allSettled(servers.map((s) => s.stop()));
    await network.stop().catch(() => {});
    throw err;
  }

  const endpoint = (i: number): StartedServer => {
    const server = servers[i];
    if (server === undefined) throw new RangeError(`no server ${i} in a cluster of ${servers.length}`);
    return server;
  };
  return {
    servers,
    async disconnect(i) {
      await dockerNetwork.disconnect({ Container: endpoint(i).containerId, Force: true });
    },
    async reconnect(i) {
      await dockerNetwork.connect({
        Container: endpoint(i).containerId,
        EndpointConfig: { Aliases: [aliases[i] as string] },
      });
    },
    async stop() {
      await Promise.allSettled(servers.map((s) => s.stop()));
      await network.stop().catch(() => {});
    },
  };
}

interface StartedServer extends NatsServer {
  readonly containerId: string;
}

function startServer(configure: (container: NatsContainer) => NatsContainer): Promise<StartedServer> {
  return onFreeLoopbackPort(async (port) => {
    const container = configure(
      new NatsContainer(natsImage())
        .withExposedPorts({ container: 4222, host: port })
        .withArg("--http_port", "8222")
        .withLabels(labels()),
    );
    return wrap(await container.start(), port);
  });
}

function wrap(container: StartedNatsContainer, port: number): StartedServer {
  const { user, pass } = container.getConnectionOptions();
  const url = `nats://127.0.0.1:${port}`;
  const dockerContainer = async () => (await getContainerRuntimeClient()).container.getById(container.getId());
  let stopped = false;
  return {
    url,
    user: user ?? "test",
    pass: pass ?? "test",
    containerId: container.getId(),
    connectOptions: () => ({ servers: url, user: user ?? "test", pass: pass ?? "test" }),
    // Not testcontainers' restart: it waits for the "Server is ready" log line since the new
    // start, and now and then misses it (120 s, then a failed test: kv-watch's NATS restart in
    // 2 of 9 runs, and once in CI). The server greeting a client on its port is the readiness
    // that matters here.
    async restart() {
      await (await dockerContainer()).restart({ t: 0 });
      await waitForGreeting(port, 60_000);
    },
    pause: async () => (await dockerContainer()).pause(),
    unpause: async () => (await dockerContainer()).unpause(),
    async stop() {
      if (stopped) return;
      stopped = true;
      // A paused container cannot be stopped.
      await (await dockerContainer()).unpause().catch(() => {});
      await container.stop();
    },
  };
}

/** Resolves once a NATS server on `port` sends its INFO greeting to a new connection. */
async function waitForGreeting(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const greeted = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: "127.0.0.1", port });
      const done = (ok: boolean) => {
        socket.destroy();
        resolve(ok);
      };
      socket.setTimeout(1_000, () => done(false));
      socket.once("data", (data: Buffer) => done(data.toString("latin1").startsWith("INFO ")));
      socket.once("error", () => done(false));
      socket.once("close", () => done(false));
    });
    if (greeted) return;
    if (Date.now() > deadline) throw new Error(`NATS on port ${port} did not greet a client within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Runs `start` with a free loopback port. Docker may still grab the port between our probe and
 * its bind: then it runs again with another, a few times; any other failure is the caller's.
 */
export async function onFreeLoopbackPort<T>(start: (port: number) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const port = await freeLoopbackPort();
    try {
      return await start(port);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (attempt >= 3 || !/port is already allocated|address already in use/i.test(message)) throw err;
    }
  }
}

/** A port nothing listens on right now, on 127.0.0.1. */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === "object") resolve(address.port);
        else reject(new Error("no port assigned"));
      });
    });
  });
}

/**
 * "Server is ready" comes before routes form. Clients on every server publish until a
 * subscriber on every other server has heard from them: routes and interest both work.
 */
async function waitForRoutes(servers: readonly NatsServer[], timeoutMs = 60_000): Promise<void> {
  if (servers.length < 2) return;
  const connections = await Promise.all(
    servers.map((s, i) => connectNats({ ...s.connectOptions(), name: `route-probe-${i}`, ignoreClusterUpdates: true })),
  );
  try {
    await waitForInterest(connections, `_quorate.probe.${Date.now().toString(36)}`, timeoutMs);
  } finally {
    await Promise.allSettled(connections.map((nc) => nc.close()));
  }
}

/**
 * Removes harness containers and networks: those of `owner`, or, without one, those whose
 * owning process is gone (left behind by a crashed run). Never touches anything unlabeled.
 */
export async function removeHarnessContainers(owner?: string): Promise<number> {
  const client = await getContainerRuntimeClient();
  const docker = client.container.dockerode;
  const belongs = (containerLabels: Record<string, string> | undefined) => {
    const who = containerLabels?.[OWNER_LABEL];
    if (who === undefined) return false;
    return owner !== undefined ? who === owner : !processAlive(Number(who));
  };
  const containers = await docker.listContainers({ all: true, filters: { label: [HARNESS_LABEL] } });
  let removed = 0;
  for (const info of containers.filter((c) => belongs(c.Labels))) {
    await docker
      .getContainer(info.Id)
      .remove({ force: true, v: true })
      .then(() => removed++)
      .catch(() => {});
  }
  const networks = await docker.listNetworks({ filters: { label: [HARNESS_LABEL] } });
  for (const info of networks.filter((n) => belongs(n.Labels))) {
    await docker
      .getNetwork(info.Id)
      .remove()
      .catch(() => {});
  }
  return removed;
}

function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
