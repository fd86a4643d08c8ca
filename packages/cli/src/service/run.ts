import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "@quorate/core";
import { connectNats, type NatsConnectOptions } from "@quorate/transport-nats";
import { type CommandIo, Exit } from "../io.js";
import { type HealthServer, MemberHealth, type MemberProbe, startHealthServer } from "./health.js";

export interface RunMemberOptions<M> {
  io: CommandIo;
  logger: Logger;
  nats: NatsConnectOptions;
  /**
   * How long to wait for NATS at start: null waits until it answers (a service should outlive
   * a NATS that starts after it), 0 fails at once.
   */
  natsWaitMs: number | null;
  /** NATS client PING interval in ms; null keeps the transport's default. */
  natsPingMs: number | null;
  /** Where to serve /livez and /readyz; null for no health server. */
  health: { port: number; host: string } | null;
  /** Starts the member's roles on the connection. Nothing may be written before this runs. */
  start(nc: NatsConnection): Promise<M>;
  probe(member: M): MemberProbe;
  stop(member: M): Promise<void>;
  /** Fields for the "running" log line. */
  describe(member: M, nc: NatsConnection): Record<string, unknown>;
}

/**
 * The life of a member process: health server, NATS (waiting for it if need be), the member's
 * roles, then SIGINT/SIGTERM and a clean shutdown. A stop requested while still waiting for
 * NATS ends the wait and exits 0.
 */
export async function runMember<M>(options: RunMemberOptions<M>): Promise<number> {
  const { io, logger } = options;
  const health = new MemberHealth();
  let server: HealthServer | null = null;
  if (options.health !== null) {
    server = await startHealthServer({ ...options.health, checks: health, logger });
    logger.info("health endpoints listening", { host: server.host, port: server.port, paths: ["/livez", "/readyz"] });
  }
  try {
    const servers = [options.nats.servers].flat().join(",");
    health.waitingForNats(servers);
    const wait = options.natsWaitMs;
    if (wait !== 0) logger.info("connecting to NATS", { servers, waitMs: wait ?? "unbounded" });
    const connecting = connectNats(
      {
        ...options.nats,
        waitOnFirstConnect: wait !== 0,
        ...(options.natsPingMs === null ? {} : { pingIntervalMs: options.natsPingMs }),
        ...(wait === null || wait === 0 ? {} : { firstConnectTimeoutMs: wait }),
      },
      logger,
    );
    const first = await Promise.race([
      connecting.then((nc) => ({ nc })),
      options.io.stopSignal.then((signal) => ({ signal })),
    ]);
    if ("signal" in first) {
      logger.info("stopped while waiting for NATS", { signal: first.signal });
      // The attempt goes on in the background; a connection it still makes is closed at once.
      connecting.then((nc) => nc.close()).catch(() => {});
      return Exit.Ok;
    }
    const { nc } = first;
    health.connected(nc);
    let member: M;
    try {
      member = await options.start(nc);
    } catch (err) {
      await nc.close();
      throw err;
    }
    health.running(options.probe(member));
    logger.info("member running", options.describe(member, nc));
    const signal = await io.stopSignal;
    logger.info("shutting down", { signal });
    health.stopping();
    await options.stop(member);
    // Draining needs the server; with NATS down there is nothing left to deliver anyway.
    await nc.drain().catch(async (err: unknown) => {
      logger.warn("NATS drain failed; closing the connection", { error: String(err) });
      await nc.close();
    });
    return Exit.Ok;
  } finally {
    await server?.close();
  }
}
