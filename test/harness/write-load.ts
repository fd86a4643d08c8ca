import { ErrorCode, isQuorateError } from "../../packages/core/src/index.js";
import type { KvClient } from "../../packages/kv/src/nats.js";
import { eventually } from "./service.js";

/** What a write load did: the writes acknowledged (all must stay readable) and those of unknown outcome. */
export interface Ledger {
  acknowledged: Map<string, string>;
  indeterminate: number;
}

export function emptyLedger(): Ledger {
  return { acknowledged: new Map(), indeterminate: 0 };
}

/**
 * `count` writes of unique keys spread over `clients`, recording what was acknowledged. Once a
 * third of them is done, `during` runs (a kill, a restart) while the other clients keep writing.
 */
export async function writeLoad(
  clients: KvClient[],
  prefix: string,
  count: number,
  ledger: Ledger,
  during?: (done: number) => Promise<void> | void,
): Promise<void> {
  let next = 0;
  let done = 0;
  let triggered = false;
  await Promise.all(
    clients.map(async (client) => {
      for (let i = next++; i < count; i = next++) {
        await write(client, prefix, i, ledger);
        done++;
        if (!triggered && during !== undefined && done >= count / 3) {
          triggered = true;
          await during(done);
        }
      }
    }),
  );
}

/**
 * Writes of unique keys from every client at once until `until` settles (faults being injected
 * and healed); each client then finishes the write it has in flight.
 */
export async function writeUntil(
  clients: KvClient[],
  prefix: string,
  ledger: Ledger,
  until: Promise<unknown>,
): Promise<void> {
  let stopped = false;
  const stop = () => {
    stopped = true;
  };
  until.then(stop, stop);
  let next = 0;
  await Promise.all(
    clients.map(async (client) => {
      while (!stopped) {
        try {
          await write(client, prefix, next++, ledger);
        } catch (err) {
          // The other clients must not write on after the run has failed.
          stopped = true;
          throw err;
        }
      }
    }),
  );
}

/** Resolves once `count` more writes than now have been acknowledged: the cluster makes progress. */
export async function acknowledgedMore(ledger: Ledger, count: number, timeoutMs = 30_000): Promise<void> {
  const target = ledger.acknowledged.size + count;
  await eventually(
    `${count} more acknowledged writes`,
    async () => (ledger.acknowledged.size >= target ? true : undefined),
    timeoutMs,
    () => `(${ledger.acknowledged.size} of ${target} acknowledged)`,
  );
}

/**
 * Reads back every acknowledged write, `perClient` reads in flight on each of `clients`; lists
 * those not read with their acknowledged value.
 */
export async function lostWrites(clients: KvClient[], ledger: Ledger, perClient = 8): Promise<string[]> {
  const entries = [...ledger.acknowledged];
  const lost: string[] = [];
  let next = 0;
  const readers = clients.flatMap((client) => Array.from({ length: perClient }, () => client));
  await Promise.all(
    readers.map(async (client) => {
      for (let i = next++; i < entries.length; i = next++) {
        const [key, value] = entries[i] as [string, string];
        const read = await client.get(key);
        if (read !== value) lost.push(`${key}: acknowledged ${value}, read ${String(read)}`);
      }
    }),
  );
  return lost.sort();
}

/** One write of a unique key; an error other than an indeterminate outcome fails the load. */
async function write(client: KvClient, prefix: string, i: number, ledger: Ledger): Promise<void> {
  const key = `${prefix}-${i}`;
  const value = `v${i}`;
  try {
    await client.put(key, value);
    ledger.acknowledged.set(key, value);
  } catch (err) {
    if (!isQuorateError(err, ErrorCode.Indeterminate)) throw err;
    ledger.indeterminate++;
  }
}
