import { randomUUID } from "node:crypto";
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import { ErrorCode, isQuorateError, isValidToken, QuorateError, rpcSubject, serviceErrorHeaders } from "@quorate/core";
import { decodeConfig, encodeBackup, type Membership, type RaftNode, SNAPSHOT_CHUNK_BYTES } from "@quorate/raft";
import { toMsgHdrs } from "@quorate/transport-nats";

/** Operator requests for one member, on `quorate.<cluster>.rpc.admin.<member>`. */
export const ADMIN_SERVICE = "admin";

export type AdminRequest =
  | { op: "transfer-leadership"; to?: string }
  | { op: "add-member"; member: string; learner: boolean }
  | { op: "promote-member"; member: string }
  | { op: "remove-member"; member: string }
  /** Take a backup now (on the leader) and hold it for `read-backup`. */
  | { op: "save-backup" }
  /** Up to SNAPSHOT_CHUNK_BYTES of the held backup `id`, from `offset`. */
  | { op: "read-backup"; id: string; offset: number };

/** The backup a member holds after `save-backup`, read in chunks with `read-backup`. */
export interface HeldBackup {
  readonly id: string;
  /** Bytes of the whole backup file. */
  readonly bytes: number;
  readonly index: number;
  readonly term: number;
}

/** What one admin request answers besides the leader and membership. */
interface Outcome {
  backup?: HeldBackup;
  /** `read-backup`: the chunk, base64 (admin replies are JSON). */
  chunk?: string;
}

export type AdminReply =
  | ({ ok: true; leader: string | null; membership: Membership } & Outcome)
  | { ok: false; code: ErrorCode; message: string };

/**
 * A held backup is dropped this long after it was last read: a client that went away leaves no
 * copy of the state in memory for long. One backup is held at a time; a new save replaces it.
 */
const HELD_BACKUP_IDLE_MS = 60_000;

function parseRequest(data: Uint8Array): AdminRequest | null {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(data));
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null) return null;
  const { op, to, member, learner, id, offset } = value as Record<string, unknown>;
  if (op === "save-backup") return { op };
  if (op === "read-backup") {
    return typeof id === "string" && Number.isSafeInteger(offset) && (offset as number) >= 0
      ? { op, id, offset: offset as number }
      : null;
  }
  if (op === "transfer-leadership") {
    if (to === undefined) return { op };
    return isValidToken(to) ? { op, to } : null;
  }
  if (!isValidToken(member)) return null;
  if (op === "add-member") return { op, member, learner: learner === true };
  if (op === "promote-member" || op === "remove-member") return { op, member };
  return null;
}

/** Holds at most one backup file for a client to read in chunks. */
class BackupHolder {
  #held: { readonly id: string; readonly file: Uint8Array; timer: ReturnType<typeof setTimeout> } | null = null;

  constructor(
    private readonly cluster: string,
    private readonly group: string,
  ) {}

  async save(node: RaftNode): Promise<Outcome> {
    const snapshot = await node.backupSnapshot();
    const file = encodeBackup({
      cluster: this.cluster,
      group: this.group,
      index: snapshot.index,
      term: snapshot.term,
      config: decodeConfig(snapshot.config),
      createdAtMs: Date.now(),
      data: snapshot.data,
    });
    this.clear();
    const id = randomUUID();
    this.#held = { id, file, timer: this.#expiry() };
    return { backup: { id, bytes: file.length, index: snapshot.index, term: snapshot.term } };
  }

  read(id: string, offset: number): Outcome {
    const held = this.#held;
    if (held === null || held.id !== id) {
      throw new QuorateError(ErrorCode.Rejected, "this member holds no such backup (expired or replaced); save again");
    }
    if (offset > held.file.length) {
      throw new QuorateError(ErrorCode.Rejected, `offset ${offset} is past the backup's ${held.file.length} bytes`);
    }
    clearTimeout(held.timer);
    held.timer = this.#expiry();
    const chunk = held.file.subarray(offset, offset + SNAPSHOT_CHUNK_BYTES);
    return { chunk: Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString("base64") };
  }

  clear(): void {
    if (this.#held !== null) clearTimeout(this.#held.timer);
    this.#held = null;
  }

  #expiry(): ReturnType<typeof setTimeout> {
    const timer = setTimeout(() => this.clear(), HELD_BACKUP_IDLE_MS);
    timer.unref();
    return timer;
  }
}

async function perform(node: RaftNode, backups: BackupHolder, request: AdminRequest): Promise<Outcome> {
  switch (request.op) {
    case "save-backup":
      return backups.save(node);
    case "read-backup":
      return backups.read(request.id, request.offset);
    case "transfer-leadership":
      await node.transferLeadership(request.to);
      return {};
    case "add-member":
      await node.addMember(request.member, { learner: request.learner });
      return {};
    case "promote-member":
      await node.promoteMember(request.member);
      return {};
    case "remove-member":
      await node.removeMember(request.member);
      return {};
  }
}

/**
 * Answers admin requests for `node`: leadership transfer, membership changes and backups of
 * consensus group `group`.
 */
export function serveAdmin(nc: NatsConnection, cluster: string, group: string, node: RaftNode): Subscription {
  const backups = new BackupHolder(cluster, group);
  const subscription = nc.subscribe(rpcSubject({ cluster }, ADMIN_SERVICE, node.id), {
    callback: (err: Error | null, msg: Msg) => {
      if (err !== null || !msg.reply) return;
      const request = parseRequest(msg.data);
      // A refusal also carries the NATS micro error headers, for `nats req` and other languages.
      const reply = (body: AdminReply) =>
        msg.respond(
          JSON.stringify(body),
          body.ok ? undefined : toMsgHdrs(serviceErrorHeaders(body.code, body.message)),
        );
      if (request === null) {
        reply({ ok: false, code: ErrorCode.Rejected, message: "unknown admin request" });
        return;
      }
      perform(node, backups, request).then(
        (outcome) => reply({ ok: true, leader: node.leader(), membership: node.membership(), ...outcome }),
        (e: unknown) =>
          reply(
            isQuorateError(e)
              ? { ok: false, code: e.code, message: e.message }
              : { ok: false, code: ErrorCode.Invariant, message: String(e) },
          ),
      );
    },
  });
  void subscription.closed.then(() => backups.clear());
  return subscription;
}
