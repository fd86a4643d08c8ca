import {
  ErrorCode,
  NO_BALLOT,
  type PaxosAcceptance,
  type PaxosBallot,
  packValue,
  paxosAcceptance,
  paxosBallot,
  QuorateError,
  silentLogger,
  unpackValue,
} from "@quorate/core";
import type { Database, RootDatabase } from "lmdb";
import { AcceptorShape } from "./acceptor-shape.js";
import type { AcceptorState, AcceptorWrite } from "./acceptor-types.js";
import { corrupt } from "./lmdb-codec.js";
import { type OwnedEnvironment, openOwnedEnvironment, type StoreLayout } from "./lmdb-directory.js";
import type { OpenOptions } from "./types.js";

const LAYOUT: StoreLayout = {
  metaName: "acceptor-meta",
  identityKey: "acceptorIdentity",
  formatVersion: 1,
  maxDbs: 2,
};

const PROMISED = "promised";
const TRUNCATED = "truncated";

/**
 * Opens (creating on first use) an acceptor's LMDB store in `dir`. The store records the
 * cluster and member it belongs to on first open and refuses any other later.
 */
export async function openLmdbAcceptorStorage(options: OpenOptions): Promise<LmdbAcceptorStorage> {
  const { dir, cluster, member } = options;
  const logger = options.logger ?? silentLogger;
  return openOwnedEnvironment(options, LAYOUT, (owned) => {
    const accepted = owned.env.openDB<Uint8Array, number>({ name: "acceptor-accepted", encoding: "binary" });
    logger.info("acceptor storage opened", { dir, cluster, member, created: owned.created });
    return new LmdbAcceptorStorage(dir, owned, accepted);
  });
}

/**
 * An acceptor's durable state in LMDB: the promise and truncation point in a meta database,
 * acceptances keyed by slot. Writes issued in the same event turn share one commit and one
 * fsync; each write() resolves only after the fsync that covers it. After a failed write
 * every later call fails: the acceptor must restart from load().
 */
export class LmdbAcceptorStorage {
  #shape: AcceptorShape | null = null;
  #latest: Promise<void> = Promise.resolve();
  #failure: QuorateError | null = null;
  #closing: Promise<void> | null = null;

  private readonly env: RootDatabase;
  private readonly meta: Database<unknown, string>;

  constructor(
    readonly dir: string,
    private readonly owned: OwnedEnvironment,
    private readonly accepted: Database<Uint8Array, number>,
  ) {
    this.env = owned.env;
    this.meta = owned.meta;
  }

  async load(): Promise<AcceptorState> {
    this.#checkUsable();
    const promised = this.meta.get(PROMISED) ?? NO_BALLOT;
    if (!paxosBallot(promised)) throw corrupt(this.dir, "the promised ballot is malformed");
    const truncated = this.meta.get(TRUNCATED) ?? 0;
    if (typeof truncated !== "number") throw corrupt(this.dir, "the truncation point is not a number");
    const accepted: PaxosAcceptance[] = [];
    for (const { key, value } of this.accepted.getRange({ start: truncated + 1 })) {
      accepted.push(decodeAcceptance(key, value, this.dir));
    }
    this.#shape = new AcceptorShape(promised, truncated);
    return { promised: [promised[0], promised[1]], truncated, accepted };
  }

  // The LMDB transaction is queued before the first await, so writes commit in call order.
  async write(write: AcceptorWrite): Promise<void> {
    this.#checkUsable();
    if (this.#shape === null)
      throw new QuorateError(ErrorCode.Invariant, "load() must complete before the first write");
    this.#shape.accept(write);
    const { truncateThrough } = write;
    const promised: PaxosBallot | undefined = write.promised && [write.promised[0], write.promised[1]];
    // Encoded now, so the stored bytes are those handed over, whatever the caller does later.
    const records = (write.accepted ?? []).map((a) => [a.slot, encodeAcceptance(a)] as const);
    const committed = this.env.childTransaction(() => {
      const truncated = (this.meta.get(TRUNCATED) as number | undefined) ?? 0;
      let floor = truncated;
      if (truncateThrough !== undefined && truncateThrough > truncated) {
        for (const { key } of this.accepted.getRange({ start: truncated + 1, end: truncateThrough + 1 })) {
          this.accepted.removeSync(key);
        }
        this.meta.putSync(TRUNCATED, truncateThrough);
        floor = truncateThrough;
      }
      for (const [slot, bytes] of records) if (slot > floor) this.accepted.putSync(slot, bytes);
      if (promised !== undefined) this.meta.putSync(PROMISED, promised);
    });
    this.#latest = this.#durable(committed);
    return this.#latest;
  }

  close(): Promise<void> {
    this.#closing ??= this.#latest.catch(() => undefined).then(() => this.owned.close());
    return this.#closing;
  }

  async #durable(committed: Promise<unknown>): Promise<void> {
    try {
      await committed;
      await this.env.flushed;
    } catch (cause) {
      this.#failure ??= new QuorateError(ErrorCode.Storage, `acceptor write to ${this.dir} failed: ${String(cause)}`, {
        cause,
      });
      throw this.#failure;
    }
  }

  #checkUsable(): void {
    if (this.#closing !== null) throw new QuorateError(ErrorCode.Closed, `acceptor storage in ${this.dir} is closed`);
    if (this.#failure !== null) throw this.#failure;
  }
}

function encodeAcceptance(a: PaxosAcceptance): Uint8Array {
  return packValue({ ballot: a.ballot, value: a.value });
}

function decodeAcceptance(slot: number, bytes: Uint8Array, dir: string): PaxosAcceptance {
  let raw: unknown;
  try {
    raw = { slot, ...(unpackValue(bytes) as object) };
  } catch {
    throw corrupt(dir, `the acceptance of slot ${slot} is undecodable`);
  }
  if (!paxosAcceptance(raw)) throw corrupt(dir, `the acceptance of slot ${slot} is malformed`);
  return raw;
}
