import { ErrorCode, QuorateError } from "@quorate/core";
import { type ConcurrencyKv, type LeaseRef, leaseIdOf, queuePrefix, waitForTurn } from "./queue.js";

export const DEFAULT_LOCK_PREFIX = "quorate/lock/";

export interface MutexOptions {
  /** Where the locks' keys live. Default "quorate/lock/". */
  readonly prefix?: string;
}

export interface LockOptions {
  /**
   * The lease the hold lives by (a KvLease from `kv.lease(ttlMs)`, or its id): when the lease
   * ends, by revoke or expiry, the lock is released and the next waiter takes it.
   */
  readonly lease: LeaseRef;
  /** Stops waiting: `lock` rejects with the abort reason and leaves the queue. */
  readonly signal?: AbortSignal;
}

/**
 * A held lock. `token` is the fencing token: the create revision of the holder's key. Tokens
 * strictly increase from one holder to the next, so a resource that remembers the highest token
 * it accepted and refuses any lower one is never written by a holder that lost the lock (its
 * lease expired while it paused) after the next holder wrote.
 */
export class Lock {
  readonly name: string;
  /** The holder's key: `<prefix><name>/<lease id>`. */
  readonly key: string;
  readonly token: number;
  readonly lease: number;
  readonly #kv: ConcurrencyKv;

  /** @internal Made by Mutex.lock. */
  constructor(kv: ConcurrencyKv, name: string, key: string, token: number, lease: number) {
    this.#kv = kv;
    this.name = name;
    this.key = key;
    this.token = token;
    this.lease = lease;
  }

  /**
   * Releases the lock; resolves to whether this hold still had it (false: its lease ended, and
   * the lock may have passed on already). Deletes only this hold's key, never a later one's.
   */
  unlock(): Promise<boolean> {
    return this.#kv.delete(this.key, { revision: this.token });
  }
}

/**
 * A distributed mutex on the KV store, as etcd's concurrency.Mutex: each contender creates a
 * key under the lock's prefix attached to its lease; the key with the lowest create revision
 * holds the lock; the others wait, each watching only its predecessor's key.
 */
export class Mutex {
  readonly #kv: ConcurrencyKv;
  readonly #prefix: string;

  constructor(kv: ConcurrencyKv, options: MutexOptions = {}) {
    this.#kv = kv;
    this.#prefix = options.prefix ?? DEFAULT_LOCK_PREFIX;
  }

  /**
   * Waits for the lock `name` (first come, first served) and resolves with the hold and its
   * fencing token. Rejects with QUORATE_LEASE_NOT_FOUND when the lease ended before or while it
   * waited, and with QUORATE_CONFIG when the lease already holds or waits for this lock.
   */
  async lock(name: string, options: LockOptions): Promise<Lock> {
    const prefix = queuePrefix(this.#prefix, name);
    const lease = leaseIdOf(options.lease);
    options.signal?.throwIfAborted();
    const key = `${prefix}${lease}`;
    const token = await this.#kv.create(key, "", { lease });
    if (token === null) {
      throw new QuorateError(ErrorCode.Config, `lease ${lease} already holds or waits for lock '${name}'`);
    }
    try {
      await waitForTurn(this.#kv, prefix, key, token, options.signal);
    } catch (err) {
      // Leaves the queue, so that the waiter behind does not wait for a key nobody will release.
      await this.#kv.delete(key, { revision: token }).catch(() => false);
      throw err;
    }
    return new Lock(this.#kv, name, key, token, lease);
  }
}
