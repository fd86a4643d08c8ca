import { broadcastSubject, directSubject, type Logger } from "../../packages/core/src/index.js";
import {
  connectNats,
  createNatsTransport,
  type NatsConnection,
  type NatsTransport,
} from "../../packages/transport-nats/src/index.js";
import type { TransportGroup, TransportGroupOptions } from "../contract/transport-contract.js";
import type { NatsServer } from "./nats.js";

export interface NatsTransportGroup extends TransportGroup {
  transports: NatsTransport[];
  /** Each member's own connection, same order as members. */
  connections: NatsConnection[];
}

/**
 * One connection and transport per member; member i connects to `servers[i % servers.length]`,
 * so on a cluster members talk across routes. Resolves once every member's subscriptions are
 * known to every server involved.
 */
export async function createNatsTransportGroup(
  servers: readonly NatsServer[],
  options: TransportGroupOptions & { logger?: Logger },
): Promise<NatsTransportGroup> {
  const serverFor = (i: number): NatsServer => {
    const server = servers[i % servers.length];
    if (server === undefined) throw new Error("no NATS server");
    return server;
  };
  const connect = (i: number, name: string) =>
    connectNats(
      {
        ...serverFor(i).connectOptions(),
        name,
        // Advertised cluster URLs are container addresses the host cannot dial.
        ignoreClusterUpdates: true,
        reconnectTimeWaitMs: 100,
        maxReconnectTimeWaitMs: 1_000,
      },
      options.logger,
    );
  const connections = await Promise.all(options.members.map((m, i) => connect(i, `${options.group}-${m}`)));
  const injector = await connect(0, `${options.group}-injector`);
  const transports = options.members.map((self, i) =>
    createNatsTransport({
      nc: connections[i] as NatsConnection,
      cluster: options.cluster,
      group: options.group,
      self,
      maxFrameBytes: options.maxFrameBytes,
      ownsConnection: true,
      ...(options.logger !== undefined && { logger: options.logger }),
    }),
  );
  await waitForInterest([...connections, injector], `_quorate.ready.${options.group}`);

  const scope = { cluster: options.cluster, group: options.group };
  const all = [...connections, injector];
  return {
    transports,
    connections,
    injectRaw(sender, bytes, target) {
      injector.publish(
        target === undefined ? broadcastSubject(scope, sender) : directSubject(scope, target, sender),
        bytes,
      );
    },
    settle: () => settleConnections(all),
    async close() {
      await Promise.allSettled(transports.map((t) => t.close()));
      if (!injector.isClosed()) await injector.close();
    },
  };
}

/**
 * Flushes every open connection (so the server has every publish), then waits until no
 * connection's inbound counter moves for a few rounds (routes add an asynchronous hop).
 */
export async function settleConnections(connections: readonly NatsConnection[], maxMs = 10_000): Promise<void> {
  const open = () => connections.filter((nc) => !nc.isClosed());
  const inbound = () => open().reduce((sum, nc) => sum + nc.stats().inMsgs, 0);
  const deadline = Date.now() + maxMs;
  let last = -1;
  let stableRounds = 0;
  while (stableRounds < 2 && Date.now() < deadline) {
    await Promise.all(open().map((nc) => nc.flush().catch(() => {})));
    const now = inbound();
    stableRounds = now === last ? stableRounds + 1 : 0;
    last = now;
    if (stableRounds < 2) await new Promise((resolve) => setTimeout(resolve, 15));
  }
}

/**
 * Every connection subscribes to `<subject>.<i>` after its transport did, then all publish to
 * all until each has heard every other. Route interest travels in order, so a server that knows
 * the probe subscription also knows the transport's subscriptions made before it.
 */
export async function waitForInterest(
  connections: readonly NatsConnection[],
  subject: string,
  timeoutMs = 30_000,
): Promise<void> {
  const heard = connections.map(() => new Set<number>());
  const subscriptions = connections.map((nc, i) =>
    nc.subscribe(`${subject}.${i}`, {
      callback: (_err, msg) => {
        heard[i]?.add(Number(msg.string()));
      },
    }),
  );
  try {
    const deadline = Date.now() + timeoutMs;
    const complete = () => heard.every((set, i) => connections.every((_, j) => i === j || set.has(j)));
    while (!complete()) {
      if (Date.now() > deadline) throw new Error(`subscriptions did not propagate within ${timeoutMs} ms`);
      connections.forEach((nc, j) => {
        connections.forEach((_, i) => {
          if (i !== j && !heard[i]?.has(j)) nc.publish(`${subject}.${i}`, String(j));
        });
      });
      await Promise.all(connections.map((nc) => nc.flush()));
      if (!complete()) await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } finally {
    for (const sub of subscriptions) sub.unsubscribe();
  }
}
