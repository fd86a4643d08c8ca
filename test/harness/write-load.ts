import { ErrorCode, isQuorateError } from "../../packages/core/src/index.js";
import type { KvClient } from "../../packages/kv/src/index.js";

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
        const key = `${prefix}-${i}`;
        const value = `v${i}`;
        try {
          await client.put(key, value);
          ledger.acknowledged.set(key, value);
        } catch (err) {
          if (!isQuorateError(err, ErrorCode.Indeterminate)) throw err;
          ledger.indeterminate++;
        }
        done++;
        if (!triggered && during !== undefined && done >= count / 3) {
          triggered = true;
          await during(done);
        }
      }
    }),
  );
}
