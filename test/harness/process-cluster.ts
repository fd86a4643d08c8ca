import type { MemberStatus } from "../../packages/cli/src/index.js";
import { KvClient } from "../../packages/kv/src/nats.js";
import { connectNats, type NatsConnection } from "../../packages/transport-nats/src/index.js";
import { type MemberProcess, memberSet, waitForCluster } from "./members.js";
import { type NatsServer, startNats } from "./nats.js";

/** One protocol as `quorate node` runs it, for tests that run the same cases on Raft and Multi-Paxos. */
export interface ClusterProtocol {
  readonly name: string;
  readonly cluster: string;
  readonly protocolArgs: string[];
  /** Every member reports, and one leads (Raft's leader, Paxos's active proposer). */
  readonly ready: (statuses: MemberStatus[]) => boolean;
  /** The member process that leads (a Paxos role's id names its member), if one does. */
  readonly leaderOf: (statuses: MemberStatus[]) => string | undefined;
}

/** Raft and Multi-Paxos, in clusters named `<prefix>raft` and `<prefix>paxos`. */
export function bothProtocols(prefix: string): ClusterProtocol[] {
  return [
    {
      name: "Raft",
      cluster: `${prefix}raft`,
      protocolArgs: ["--protocol", "raft"],
      ready: (s) => s.length === 3 && s.some((m) => m.role === "leader"),
      leaderOf: (s) => s.find((m) => m.role === "leader")?.id,
    },
    {
      name: "Multi-Paxos",
      cluster: `${prefix}paxos`,
      protocolArgs: ["--protocol", "paxos"],
      // Three processes, each an acceptor, a proposer and a learner.
      ready: (s) => s.length === 9 && s.some((m) => m.role === "proposer:active"),
      leaderOf: (s) => s.find((m) => m.role === "proposer:active")?.id.replace(/-proposer$/, ""),
    },
  ];
}

export interface ProcessCluster {
  readonly nats: NatsServer;
  /** A connection of the test's own, for status requests. */
  readonly nc: NatsConnection;
  readonly members: MemberProcess[];
  /** Resolves once every member reports and one leads again (after a kill or a restart). */
  ready(): Promise<MemberStatus[]>;
  /** `count` KV clients of the cluster, each on its own connection, with a 20 s deadline per call. */
  connectClients(count: number): Promise<KvClient[]>;
  /** Kills the members, closes the connection and stops the server. */
  stop(): Promise<void>;
}

/** A NATS server and members n1, n2, n3 of `protocol` as `quorate node` processes, up and ready. */
export async function startProcessCluster(protocol: ClusterProtocol, connectionName: string): Promise<ProcessCluster> {
  const nats = await startNats();
  const nc = await connectNats({ ...nats.connectOptions(), name: connectionName });
  const { members, cleanup } = memberSet({
    cluster: protocol.cluster,
    ids: ["n1", "n2", "n3"],
    natsUrl: nats.url,
    user: nats.user,
    pass: nats.pass,
    protocolArgs: protocol.protocolArgs,
  });
  for (const m of members) m.start();
  const ready = () => waitForCluster(nc, protocol.cluster, protocol.ready, 60_000);
  const stop = async () => {
    await cleanup();
    await nc.close();
    await nats.stop();
  };
  try {
    await ready();
  } catch (err) {
    await stop();
    throw err;
  }
  const connectClients = (count: number) =>
    Promise.all(
      Array.from({ length: count }, () =>
        KvClient.connect({ nats: nats.connectOptions(), cluster: protocol.cluster, timeoutMs: 20_000 }),
      ),
    );
  return { nats, nc, members, ready, connectClients, stop };
}
