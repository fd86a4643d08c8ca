import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
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
import type { MemberStatus } from "../../packages/cli/src/index.js";
import { KvClient } from "../../packages/kv/src/nats.js";
import { waitForCluster } from "./members.js";
import { HARNESS_LABEL, harnessOwner, OWNER_LABEL, onFreeLoopbackPort } from "./nats.js";
import { type ConfiguredNats, startNatsWithConfig } from "./nats-config.js";
import { eventually } from "./service.js";
import { emptyLedger, type Ledger } from "./write-load.js";

/**
 * Quorate members as containers of the quorate image, as deploy/compose.yaml and deploy/k8s run
 * them: on a Docker network with a NATS server secured by deploy/nats-server.conf, configured
 * only through the environment, hardened (read-only root, no capabilities, uid 1000). Each
 * member can be killed and started again on its data volume, paused, and cut off the network.
 * Everything carries the harness labels, so a run that dies is cleaned up by the next one.
 */

const REPO = resolve(import.meta.dirname, "../..");
const NATS_CONFIG = resolve(REPO, "deploy/nats-server.conf");
/** Built from this machine's node by deploy/node-local/build.sh: no Docker Hub needed. */
const BASE_IMAGE = "quorate/node-local:latest";

const run = promisify(execFile);
const NATS_PING_MS = 2_000;
const labels = () => ({ [HARNESS_LABEL]: "quorate-image", [OWNER_LABEL]: harnessOwner() });

/** Builds the quorate image from this checkout as `tag`, with deploy/build-image.sh on a local Node base. */
export async function buildQuorateImage(tag: string): Promise<void> {
  await run("bash", [resolve(REPO, "deploy/node-local/build.sh"), BASE_IMAGE], { cwd: REPO });
  await run("bash", [resolve(REPO, "deploy/build-image.sh"), tag], {
    cwd: REPO,
    env: { ...process.env, BASE_IMAGE },
  });
}

/** Each run builds the image afresh; keeping old ones would only fill the disk. */
export async function removeQuorateImage(tag: string): Promise<void> {
  const client = await getContainerRuntimeClient();
  await client.container.dockerode
    .getImage(tag)
    .remove()
    .catch(() => {});
}

/** A container started as deploy/k8s starts members: read-only root filesystem. */
class ReadOnlyRootContainer extends GenericContainer {
  constructor(image: string) {
    super(image);
    this.hostConfig.ReadonlyRootfs = true;
  }
}

/**
 * The users of deploy/nats-server.conf and the variables holding their passwords
 * (`user: n1, password: $N1_PASSWORD`): the server refuses to start unless every one is set.
 */
function configUsers(): Map<string, string> {
  const users = new Map<string, string>();
  for (const match of readFileSync(NATS_CONFIG, "utf8").matchAll(/user:\s*([\w-]+),\s*password:\s*\$(\w+)/g)) {
    users.set(match[1] as string, match[2] as string);
  }
  return users;
}

export interface MemberContainer {
  readonly id: string;
  /** The host port of the member's /livez and /readyz; it stays the same across kill and start. */
  readonly healthPort: number;
  readonly container: StartedTestContainer;
  /** `docker kill`: SIGKILL, nothing flushed, exactly a crash. */
  kill(): Promise<void>;
  /** `docker start` of the killed container: the same data volume, network alias and health port. */
  start(): Promise<void>;
  /** `docker pause`: every process frozen; its connections stay open and answer nothing. */
  pause(): Promise<void>;
  unpause(): Promise<void>;
  /**
   * Takes the container off the network and resolves once the member's NATS client has given up
   * the connection (no PONG): whatever was published meanwhile is lost to the member, which
   * must catch up through the protocol once back.
   */
  disconnect(): Promise<void>;
  /** Back on the network under its alias; resolves once the member's NATS client has reconnected. */
  reconnect(): Promise<void>;
  /** Everything the member wrote (its JSON log lines), across restarts. */
  log(): Promise<string>;
}

export interface MemberStartOptions {
  image: string;
  /** The member id: also its NATS user in deploy/nats-server.conf and its network alias. */
  id: string;
  /** QUORATE_* settings of the member beyond its id and NATS login. */
  env: Record<string, string>;
  /** Arguments after the entrypoint (`paxos acceptor`); the image's default runs `quorate node`. */
  command?: string[];
}

export interface MemberNetwork {
  /** The NATS server, as the host reaches it. */
  readonly nats: ConfiguredNats;
  /** NATS connection options of a user of deploy/nats-server.conf (`app` for applications), from the host. */
  login(user: string): { servers: string; user: string; pass: string };
  /** Starts a member container and waits until it runs (connected to NATS, its roles started). */
  startMember(options: MemberStartOptions): Promise<MemberContainer>;
  /** Removes every member, the NATS server and the network. */
  stop(): Promise<void>;
}

/** A Docker network with a NATS server on it (alias `nats`) secured by deploy/nats-server.conf, passwords fresh per run. */
export async function startMemberNetwork(): Promise<MemberNetwork> {
  const client = await getContainerRuntimeClient();
  const docker = client.container.dockerode;
  const name = `quorate-image-${harnessOwner()}-${Date.now().toString(36)}`;
  const network = new StartedNetwork(
    client,
    name,
    await client.network.create({ Name: name, Driver: "bridge", Labels: labels() }),
  );
  const users = configUsers();
  const passwords = new Map([...users.keys()].map((u) => [u, `pw${randomBytes(12).toString("hex")}`]));
  const password = (user: string): string => {
    const pass = passwords.get(user);
    if (pass === undefined) throw new Error(`deploy/nats-server.conf has no user ${user}`);
    return pass;
  };
  const members: MemberContainer[] = [];
  let nats: ConfiguredNats;
  try {
    nats = await startNatsWithConfig({
      configFile: NATS_CONFIG,
      // nats-server parses a variable's value as a config value: quoted, any password is a string.
      env: Object.fromEntries([...users].map(([user, variable]) => [variable, `"${password(user)}"`])),
      network: { network, alias: "nats" },
    });
  } catch (err) {
    await network.stop().catch(() => {});
    throw err;
  }

  const startMember = async (options: MemberStartOptions): Promise<MemberContainer> => {
    const { port, container } = await onFreeLoopbackPort(async (port) => {
      let member = new ReadOnlyRootContainer(options.image)
        .withNetwork(network)
        .withNetworkAliases(options.id)
        .withLabels(labels())
        .withDroppedCapabilities("ALL")
        .withSecurityOpt("no-new-privileges")
        .withEnvironment({
          ...options.env,
          QUORATE_ID: options.id,
          NATS_URL: "nats://nats:4222",
          QUORATE_USER: options.id,
          QUORATE_PASSWORD: password(options.id),
          // A member cut off the network notices after two unanswered PINGs: 2 s apart, not 10.
          QUORATE_NATS_PING_MS: String(NATS_PING_MS),
        })
        .withExposedPorts({ container: 8080, host: port })
        .withWaitStrategy(Wait.forLogMessage(/"member running"/))
        .withStartupTimeout(60_000);
      if (options.command !== undefined) member = member.withCommand(options.command);
      return { port, container: await member.start() };
    });
    const handle = docker.getContainer(container.getId());
    const endpoint = docker.getNetwork(network.getId());
    const log = async () => demultiplex(await handle.logs({ stdout: true, stderr: true, follow: false }));
    /** Runs `change`, then waits until the member logs `line` once more than before it. */
    const logsAfter = async (line: string, change: () => Promise<unknown>) => {
      const count = async () => (await log()).split(line).length - 1;
      const before = await count();
      await change();
      // A client notices a dead connection after 2 unanswered PINGs, NATS_PING_MS apart.
      await eventually(`${options.id} logs ${line}`, async () => ((await count()) > before ? true : undefined), 60_000);
    };
    const member: MemberContainer = {
      id: options.id,
      healthPort: port,
      container,
      kill: () => handle.kill(),
      start: () => handle.start(),
      pause: () => handle.pause(),
      unpause: () => handle.unpause(),
      disconnect: () =>
        logsAfter('"NATS disconnected', () => endpoint.disconnect({ Container: container.getId(), Force: true })),
      reconnect: () =>
        logsAfter('"NATS reconnected"', () =>
          endpoint.connect({ Container: container.getId(), EndpointConfig: { Aliases: [options.id] } }),
        ),
      log,
    };
    members.push(member);
    return member;
  };

  return {
    nats,
    login: (user) => ({ servers: nats.url, user, pass: password(user) }),
    startMember,
    async stop() {
      await Promise.allSettled(
        members.map(async (m) => {
          const handle = docker.getContainer(m.container.getId());
          // A paused container cannot be removed; unpausing one that runs fails harmlessly.
          await handle.unpause().catch(() => {});
          // With its anonymous data volume: nothing of the run is left behind.
          await handle.remove({ force: true, v: true });
        }),
      );
      await nats.stop();
      await network.stop().catch(() => {});
    },
  };
}

/**
 * One image test's cluster: the quorate image built from this checkout, the secured NATS network,
 * the application's connection and KV clients, the member containers by id, and the write ledger.
 */
export class ImageCluster {
  readonly members = new Map<string, MemberContainer>();
  readonly ledger: Ledger = emptyLedger();
  clients: KvClient[] = [];
  #net: MemberNetwork | undefined;
  #app: NatsConnection | undefined;

  constructor(
    readonly image: string,
    readonly cluster: string,
  ) {}

  get net(): MemberNetwork {
    if (this.#net === undefined) throw new Error("the image cluster is not started");
    return this.#net;
  }

  /** Builds the image, starts NATS, connects as the application, then lets `startMembers` run the members. */
  async start(startMembers: (net: MemberNetwork) => Promise<void>): Promise<void> {
    await buildQuorateImage(this.image);
    this.#net = await startMemberNetwork();
    this.#app = await connect({ ...this.#net.login("app"), name: `${this.cluster}-image-test-app` });
    await startMembers(this.#net);
  }

  member(id: string): MemberContainer {
    const member = this.members.get(id);
    if (member === undefined) throw new Error(`no member container ${id}`);
    return member;
  }

  /** Polls the members' statuses until `predicate` holds. */
  status(predicate: (s: MemberStatus[]) => boolean, timeoutMs?: number): Promise<MemberStatus[]> {
    if (this.#app === undefined) throw new Error("the image cluster is not started");
    return waitForCluster(this.#app, this.cluster, predicate, timeoutMs);
  }

  /** `count` KV clients logged in as the application user. */
  async connectClients(count: number): Promise<KvClient[]> {
    this.clients = await Promise.all(
      Array.from({ length: count }, () =>
        KvClient.connect({ nats: this.net.login("app"), cluster: this.cluster, timeoutMs: 20_000 }),
      ),
    );
    return this.clients;
  }

  async stop(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.close()));
    await this.#app?.close();
    await this.#net?.stop();
    await removeQuorateImage(this.image);
  }
}

/**
 * Publishes the NATS server refused a member, from its log. A reply to a request that arrived
 * before the member reconnected is refused by design (`allow_responses` covers requests received
 * on the same connection; the requester has long given up and retries), so those are not counted.
 */
export function refusedPublishes(log: string): string[] {
  return log.split("\n").filter((line) => /Permissions Violation/i.test(line) && !/Publish to \\"_INBOX\./.test(line));
}

/**
 * The text of `docker logs` of a container without a TTY: frames of an 8-byte header (stream,
 * three zero bytes, big-endian length) and that many bytes of stdout or stderr.
 */
function demultiplex(raw: Buffer): string {
  const chunks: Buffer[] = [];
  for (let at = 0; at + 8 <= raw.length; ) {
    const length = raw.readUInt32BE(at + 4);
    chunks.push(raw.subarray(at + 8, at + 8 + length));
    at += 8 + length;
  }
  return Buffer.concat(chunks).toString("utf8");
}
