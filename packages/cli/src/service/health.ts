import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { NatsConnection } from "@nats-io/transport-node";
import { ErrorCode, type Logger, QuorateError, silentLogger } from "@quorate/core";

/**
 * Liveness and readiness for orchestrators, over plain HTTP:
 *
 *   GET /livez   200 while the process runs its loop (it answers at all) and no consensus role
 *                has stopped on its own (a storage or machine failure): a restart is the cure.
 *   GET /readyz  200 when connected to NATS, a leader is known and this member has applied
 *                everything it knows to be committed; 503 otherwise, with the reasons.
 *
 * Both answer JSON: `{ "status": "ok" | "unavailable", "reasons": [...], ... }`.
 */

export interface ProbeResult {
  readonly ok: boolean;
  /** Why not, in words an operator can act on; empty when ok. */
  readonly reasons: readonly string[];
  /** Extra facts for the body (the member's status). */
  readonly detail?: Readonly<Record<string, unknown>>;
}

export interface HealthChecks {
  liveness(): ProbeResult;
  readiness(): ProbeResult;
}

export interface HealthServer {
  /** The port actually bound (useful with port 0). */
  readonly port: number;
  readonly host: string;
  close(): Promise<void>;
}

export async function startHealthServer(options: {
  port: number;
  host?: string;
  checks: HealthChecks;
  logger?: Logger;
}): Promise<HealthServer> {
  const host = options.host ?? "0.0.0.0";
  const logger = options.logger ?? silentLogger;
  const server = createServer((req, res) => handle(req, res, options.checks, logger));
  // A probe that hangs must not keep the process from stopping.
  server.keepAliveTimeout = 1_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => {
      const reason = err.code === "EADDRINUSE" ? "is already in use" : `cannot be bound (${err.code ?? err.message})`;
      reject(new QuorateError(ErrorCode.Config, `health port ${host}:${options.port} ${reason}`, { cause: err }));
    });
    server.listen(options.port, host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : options.port;
  server.on("error", (err) => logger.error("health server error", { error: err.message }));
  return {
    port,
    host,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function handle(req: IncomingMessage, res: ServerResponse, checks: HealthChecks, logger: Logger): void {
  const path = (req.url ?? "/").split("?")[0];
  const probe = path === "/livez" ? () => checks.liveness() : path === "/readyz" ? () => checks.readiness() : undefined;
  if (probe === undefined) {
    reply(res, 404, { status: "not found", paths: ["/livez", "/readyz"] });
    return;
  }
  if (req.method !== "GET" && req.method !== "HEAD") {
    reply(res, 405, { status: "method not allowed" });
    return;
  }
  let result: ProbeResult;
  try {
    result = probe();
  } catch (err) {
    // A probe that throws is a bug; say so instead of pretending to be healthy.
    logger.error("health probe failed", { path, error: String(err) });
    result = { ok: false, reasons: [`probe failed: ${err instanceof Error ? err.message : String(err)}`] };
  }
  reply(res, result.ok ? 200 : 503, {
    status: result.ok ? "ok" : "unavailable",
    reasons: result.reasons,
    ...result.detail,
  });
}

function reply(res: ServerResponse, code: number, body: Record<string, unknown>): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(code, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-store",
  });
  res.end(res.req.method === "HEAD" ? undefined : text);
}

/** What a running member tells the probes: why it is not live, and why it is not ready. */
export interface MemberProbe {
  /** Roles that stopped on their own (a restart is needed). */
  failures(): string[];
  /** Why the member should not take traffic yet. */
  notReady(): string[];
  /** Shown in probe bodies. */
  status(): unknown;
}

/**
 * The health of one member process through its life: waiting for NATS, starting, running,
 * stopping. The command moves it along; the HTTP probes read it.
 */
export class MemberHealth implements HealthChecks {
  #phase: "waiting" | "starting" | "running" | "stopping" = "starting";
  #waitingFor = "";
  #connected: (() => boolean) | null = null;
  #member: MemberProbe | null = null;

  waitingForNats(servers: string): void {
    this.#phase = "waiting";
    this.#waitingFor = servers;
  }

  /** NATS answered; from now on its connection state counts. */
  connected(nc: NatsConnection): void {
    this.#phase = "starting";
    this.#connected = watchConnection(nc);
  }

  running(member: MemberProbe): void {
    this.#phase = "running";
    this.#member = member;
  }

  stopping(): void {
    this.#phase = "stopping";
  }

  liveness(): ProbeResult {
    const failures = this.#member?.failures() ?? [];
    return { ok: failures.length === 0, reasons: failures, detail: { phase: this.#phase } };
  }

  readiness(): ProbeResult {
    const reasons: string[] = [];
    if (this.#phase === "waiting") reasons.push(`waiting for NATS at ${this.#waitingFor}`);
    if (this.#phase === "starting") reasons.push("starting");
    if (this.#phase === "stopping") reasons.push("shutting down");
    if (this.#connected !== null && !this.#connected()) reasons.push("not connected to NATS");
    if (this.#member !== null) reasons.push(...this.#member.failures(), ...this.#member.notReady());
    const status = this.#member?.status();
    return {
      ok: reasons.length === 0,
      reasons,
      detail: { phase: this.#phase, ...(status === undefined ? {} : { member: status }) },
    };
  }
}

/**
 * Tracks whether the connection is up: the client reports disconnects and reconnects as status
 * events. Ends with the connection.
 */
export function watchConnection(nc: NatsConnection): () => boolean {
  let up = !nc.isClosed();
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === "disconnect" || s.type === "staleConnection") up = false;
      else if (s.type === "reconnect") up = true;
    }
  })().catch(() => {
    up = false;
  });
  return () => up && !nc.isClosed();
}

/** The consensus facts readiness needs, common to Raft members and Paxos roles. */
export interface ConsensusFacts {
  readonly leader: string | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
}

/**
 * Why a member that applies the log (a Raft member, a Paxos learner) is not ready: no leader
 * known, or not yet applied up to the commit index it has heard of from the leader.
 */
export function replicaNotReady(facts: ConsensusFacts, leaderWord = "leader"): string[] {
  const reasons: string[] = [];
  if (facts.leader === null) reasons.push(`no ${leaderWord} known`);
  if (facts.appliedIndex < facts.commitIndex) {
    reasons.push(`catching up: applied ${facts.appliedIndex} of ${facts.commitIndex} committed`);
  }
  return reasons;
}

/** A role that stopped on its own, as a liveness reason. */
export function failureReason(what: string, failure: Error | null): string[] {
  return failure === null ? [] : [`${what} stopped: ${failure.message}`];
}
