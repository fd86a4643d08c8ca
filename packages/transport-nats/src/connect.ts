import { readFile } from "node:fs/promises";
import {
  type Authenticator,
  AuthorizationError,
  connect,
  credsAuthenticator,
  InvalidArgumentError,
  type NatsConnection,
  type NodeConnectionOptions,
  nkeyAuthenticator,
  nkeys,
  type Status,
  tokenAuthenticator,
  UserAuthenticationExpiredError,
  usernamePasswordAuthenticator,
} from "@nats-io/transport-node";
import { ErrorCode, type Logger, QuorateError, silentLogger } from "@quorate/core";

/** Files for a TLS connection; each is read when connecting, so a bad path fails fast. */
export interface NatsTlsOptions {
  /** PEM bundle of the CAs that sign the server certificate. */
  readonly caFile?: string;
  /** PEM client certificate, for servers that verify clients (mTLS). */
  readonly certFile?: string;
  /** PEM private key of `certFile`. */
  readonly keyFile?: string;
}

export interface NatsConnectOptions {
  /** `host:port` or `nats://host:port`; several for a cluster. */
  readonly servers: string | readonly string[];
  /** Client name shown by the server's monitoring endpoints. */
  readonly name?: string;
  /** Path to a `.creds` file (user JWT + seed), for decentralized JWT auth. */
  readonly credsFile?: string;
  /** A user nkey seed (`SU...`), or the path to a file holding one. */
  readonly nkeySeed?: string;
  readonly token?: string;
  readonly user?: string;
  readonly pass?: string;
  /** Require TLS; the files are optional (system CAs are used when `caFile` is absent). */
  readonly tls?: NatsTlsOptions;
  /**
   * Keep retrying until the first connection succeeds, instead of failing at once.
   * Bounded by `firstConnectTimeoutMs` when set; otherwise waits indefinitely.
   */
  readonly waitOnFirstConnect?: boolean;
  readonly firstConnectTimeoutMs?: number;
  /** Timeout of one connection handshake. Default 10 s. */
  readonly connectTimeoutMs?: number;
  /** First wait between reconnect attempts; doubles per failed attempt. Default 250 ms. */
  readonly reconnectTimeWaitMs?: number;
  /** Upper bound of the doubling wait. Default 4 s. */
  readonly maxReconnectTimeWaitMs?: number;
  /** Random extra wait per attempt, so members do not reconnect in lockstep. Default 250 ms. */
  readonly reconnectJitterMs?: number;
  /**
   * Do not add server URLs gossiped by the cluster to the reconnect pool. Needed when the
   * advertised addresses are not reachable from the client (containers, NAT).
   */
  readonly ignoreClusterUpdates?: boolean;
  /**
   * Client PING interval. A dead server is noticed after about `pingIntervalMs * maxPingOut`;
   * the NATS default (2 min x 2) is too slow for consensus. Default 10 s.
   */
  readonly pingIntervalMs?: number;
  /** Unanswered PINGs before the connection is declared stale. Default 2. */
  readonly maxPingOut?: number;
}

const SEED = /S[UOANCXP][A-Z2-7]{56}/;

/**
 * Connects to NATS and keeps reconnecting for the life of the connection: consensus members
 * must ride out server restarts without being rebuilt. Status changes go to `logger`.
 */
export async function connectNats(options: NatsConnectOptions, logger: Logger = silentLogger): Promise<NatsConnection> {
  const servers = serverList(options.servers);
  const authenticator = await buildAuthenticatorFor(options);
  const tls = options.tls === undefined ? undefined : await readTls(options.tls);
  const backoff = new ReconnectBackoff(
    options.reconnectTimeWaitMs ?? 250,
    options.maxReconnectTimeWaitMs ?? 4_000,
    options.reconnectJitterMs ?? 250,
  );
  const natsOptions: NodeConnectionOptions = {
    servers,
    name: options.name,
    authenticator,
    tls,
    maxReconnectAttempts: -1,
    reconnectDelayHandler: () => backoff.delay(),
    // Our own loop below retries the first connection, so it can be bounded and logged.
    waitOnFirstConnect: false,
    timeout: options.connectTimeoutMs ?? 10_000,
    ignoreClusterUpdates: options.ignoreClusterUpdates ?? false,
    pingInterval: options.pingIntervalMs ?? 10_000,
    maxPingOut: options.maxPingOut ?? 2,
    // Async traces capture a stack per request; consensus never needs them on the hot path.
    noAsyncTraces: true,
  };

  const deadline = options.waitOnFirstConnect
    ? Date.now() + (options.firstConnectTimeoutMs ?? Number.POSITIVE_INFINITY)
    : Number.NEGATIVE_INFINITY;
  let nc: NatsConnection | undefined;
  for (let attempt = 0; nc === undefined; attempt++) {
    try {
      nc = await connect(natsOptions);
    } catch (err) {
      const error = connectError(err, servers);
      const wait = backoff.waitFor(attempt);
      if (error.code !== ErrorCode.Unreachable || Date.now() + wait > deadline) throw error;
      logger.info("NATS not reachable yet, retrying", { servers, attempt, waitMs: wait, error: error.message });
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
  logger.info("connected to NATS", { server: nc.getServer(), name: options.name });
  watchStatus(nc, backoff, logger);
  return nc;
}

function serverList(servers: string | readonly string[]): string[] {
  const list = (typeof servers === "string" ? servers.split(",") : [...servers]).map((s) => s.trim());
  if (list.length === 0 || list.some((s) => s.length === 0)) {
    throw new QuorateError(ErrorCode.Config, `NATS servers must be a non-empty list of URLs (got ${String(servers)})`);
  }
  return list;
}

async function buildAuthenticatorFor(options: NatsConnectOptions): Promise<Authenticator | undefined> {
  const methods = [
    options.credsFile !== undefined && "credsFile",
    options.nkeySeed !== undefined && "nkeySeed",
    options.token !== undefined && "token",
    (options.user !== undefined || options.pass !== undefined) && "user/pass",
  ].filter((m): m is string => m !== false);
  if (methods.length > 1) {
    throw new QuorateError(ErrorCode.Config, `choose one NATS auth method, got ${methods.join(" and ")}`);
  }
  if (options.credsFile !== undefined) {
    const creds = await readConfigFile("NATS credentials file", options.credsFile);
    const authenticator = credsAuthenticator(creds);
    try {
      // Parse now: a malformed file should fail here, not on every reconnect.
      authenticator("probe");
    } catch (err) {
      throw new QuorateError(
        ErrorCode.Config,
        `NATS credentials file ${options.credsFile} is not a valid .creds file`,
        {
          cause: err,
        },
      );
    }
    return authenticator;
  }
  if (options.nkeySeed !== undefined) {
    const seed = await resolveSeed(options.nkeySeed);
    return nkeyAuthenticator(seed);
  }
  if (options.token !== undefined) return tokenAuthenticator(options.token);
  if (options.user !== undefined) return usernamePasswordAuthenticator(options.user, options.pass);
  if (options.pass !== undefined) throw new QuorateError(ErrorCode.Config, "NATS 'pass' requires 'user'");
  return undefined;
}

/** Accepts the seed itself or a path to a file containing it; never logs the seed. */
async function resolveSeed(seedOrPath: string): Promise<Uint8Array> {
  const trimmed = seedOrPath.trim();
  const looksLikeSeed = SEED.test(trimmed) && trimmed.length === 58;
  const text = looksLikeSeed ? trimmed : new TextDecoder().decode(await readConfigFile("NATS nkey seed file", trimmed));
  const found = SEED.exec(text)?.[0];
  const where = looksLikeSeed ? "the nkeySeed option" : `nkey seed file ${trimmed}`;
  if (found === undefined) throw new QuorateError(ErrorCode.Config, `${where} holds no nkey seed`);
  const seed = new TextEncoder().encode(found);
  try {
    nkeys.fromSeed(seed);
  } catch (err) {
    throw new QuorateError(ErrorCode.Config, `${where} holds an invalid nkey seed`, { cause: err });
  }
  return seed;
}

async function readTls(tls: NatsTlsOptions): Promise<{ ca?: string; cert?: string; key?: string }> {
  if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) {
    throw new QuorateError(ErrorCode.Config, "TLS certFile and keyFile must be given together");
  }
  const text = async (kind: string, path: string | undefined) =>
    path === undefined ? undefined : new TextDecoder().decode(await readConfigFile(kind, path));
  // Contents, not paths, go to the client: it would otherwise re-read them on every reconnect.
  const [ca, cert, key] = await Promise.all([
    text("TLS CA file", tls.caFile),
    text("TLS certificate file", tls.certFile),
    text("TLS key file", tls.keyFile),
  ]);
  return { ...(ca && { ca }), ...(cert && { cert }), ...(key && { key }) };
}

async function readConfigFile(kind: string, path: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (err) {
    const reason = err instanceof Error && "code" in err ? String(err.code) : String(err);
    throw new QuorateError(ErrorCode.Config, `cannot read ${kind} ${path} (${reason})`, { cause: err });
  }
}

function connectError(err: unknown, servers: readonly string[]): QuorateError {
  if (err instanceof QuorateError) return err;
  const where = servers.join(", ");
  const detail = err instanceof Error ? err.message : String(err);
  if (err instanceof AuthorizationError || err instanceof UserAuthenticationExpiredError) {
    return new QuorateError(ErrorCode.Config, `NATS at ${where} rejected the credentials: ${detail}`, { cause: err });
  }
  if (err instanceof InvalidArgumentError) {
    return new QuorateError(ErrorCode.Config, `invalid NATS connection settings for ${where}: ${detail}`, {
      cause: err,
    });
  }
  return new QuorateError(ErrorCode.Unreachable, `cannot reach NATS at ${where}: ${detail}`, { cause: err });
}

/**
 * Capped exponential backoff with jitter. The NATS client asks for the delay several times while
 * it waits, so the answer changes only when another dial attempt has been made.
 */
class ReconnectBackoff {
  #failedDials = 0;
  #jitter = 0;
  constructor(
    private readonly baseMs: number,
    private readonly maxMs: number,
    private readonly jitterMs: number,
  ) {}

  waitFor(attempt: number): number {
    return Math.min(this.maxMs, this.baseMs * 2 ** Math.min(attempt, 20)) + Math.random() * this.jitterMs;
  }
  delay(): number {
    return Math.min(this.maxMs, this.baseMs * 2 ** Math.min(Math.max(this.#failedDials - 1, 0), 20)) + this.#jitter;
  }
  dialed(): void {
    this.#failedDials++;
    this.#jitter = Math.random() * this.jitterMs;
  }
  reset(): void {
    this.#failedDials = 0;
    this.#jitter = 0;
  }
}

function watchStatus(nc: NatsConnection, backoff: ReconnectBackoff, logger: Logger): void {
  const log = (s: Status): void => {
    switch (s.type) {
      case "disconnect":
        backoff.reset();
        logger.warn("NATS disconnected; reconnecting", { server: s.server });
        break;
      case "reconnecting":
        backoff.dialed();
        logger.debug("NATS reconnect attempt");
        break;
      case "reconnect":
        backoff.reset();
        logger.info("NATS reconnected", { server: s.server });
        break;
      case "error":
        logger.error("NATS server error", { error: s.error.message });
        break;
      case "staleConnection":
        logger.warn("NATS connection is stale (no PONG); reconnecting");
        break;
      case "ldm":
        logger.warn("NATS server entered lame duck mode", { server: s.server });
        break;
      case "slowConsumer":
        logger.warn("NATS slow consumer", { subject: s.sub.getSubject(), pending: s.pending });
        break;
      case "forceReconnect":
        logger.info("NATS reconnect forced");
        break;
      case "update":
        logger.debug("NATS cluster update", { added: s.added, deleted: s.deleted });
        break;
      case "close":
      case "ping":
        break;
    }
  };
  void (async () => {
    for await (const status of nc.status()) log(status);
  })().catch((err: unknown) => logger.error("NATS status watcher failed", { error: String(err) }));
  void nc.closed().then((err) => {
    if (err) logger.error("NATS connection closed with an error", { error: err.message });
    else logger.info("NATS connection closed");
  });
}
