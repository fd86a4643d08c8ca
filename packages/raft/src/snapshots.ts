import type { NodeId, Transport } from "@quorate/core";
import type { StoredSnapshot } from "@quorate/storage";
import { type ClusterConfig, decodeConfig } from "./config.js";
import type { InstallSnapshot, InstallSnapshotResponse } from "./messages.js";
import type { ReceivedSnapshot } from "./protocol.js";

/** Bytes per snapshot chunk: well under NATS's 1 MiB max_payload with the envelope around it. */
export const SNAPSHOT_CHUNK_BYTES = 256 * 1024;
/** Chunks sent ahead of the follower's acknowledgements: flow control for a large transfer. */
const WINDOW_CHUNKS = 4;
/** Ticks without an acknowledgement before the unacknowledged chunks are sent again. */
const RESEND_TICKS = 10;

interface Transfer {
  readonly snapshot: StoredSnapshot;
  readonly term: number;
  /** Bytes the follower confirmed; the transfer resumes from here. */
  acked: number;
  /** Bytes sent so far. */
  sent: number;
  /** An empty snapshot still goes out as one (empty) chunk; this says it went. */
  sentEmpty: boolean;
  idleTicks: number;
}

/**
 * Streams snapshots to followers behind the leader's compaction point: acknowledged chunks, a
 * bounded window, resumption from the last acknowledged offset. A transfer of a snapshot
 * already under way is never restarted (the re-install loop of hashicorp/raft #212).
 */
export class SnapshotSender {
  readonly #transfers = new Map<NodeId, Transfer>();

  constructor(private readonly transport: Transport) {}

  /** Starts sending `snapshot` to each of `peers`; none while this member has no snapshot yet. */
  startAll(peers: readonly NodeId[], snapshot: StoredSnapshot | null, term: number): void {
    if (snapshot === null) return;
    for (const peer of peers) this.start(peer, snapshot, term);
  }

  start(peer: NodeId, snapshot: StoredSnapshot, term: number): void {
    const running = this.#transfers.get(peer);
    if (running !== undefined && running.snapshot.index === snapshot.index && running.term === term) return;
    const transfer: Transfer = { snapshot, term, acked: 0, sent: 0, sentEmpty: false, idleTicks: 0 };
    this.#transfers.set(peer, transfer);
    this.#fill(peer, transfer);
  }

  onResponse(from: NodeId, response: InstallSnapshotResponse): void {
    const transfer = this.#transfers.get(from);
    if (transfer === undefined || response.index !== transfer.snapshot.index) return;
    const total = transfer.snapshot.data.length;
    if (response.next >= total) {
      this.#transfers.delete(from);
      return;
    }
    if (response.next < transfer.acked) {
      // The follower lost what it had acknowledged (it restarted): go on from where it is.
      transfer.acked = response.next;
      transfer.sent = response.next;
      transfer.idleTicks = 0;
    } else if (response.next > transfer.acked) {
      transfer.acked = response.next;
      transfer.idleTicks = 0;
    }
    // An acknowledgement that repeats the last one means a chunk went missing. Rewinding on each
    // would resend the window once per chunk still in flight, and each resent chunk draws another
    // such acknowledgement: a storm. The resend after RESEND_TICKS idle ticks recovers instead.
    this.#fill(from, transfer);
  }

  tick(): void {
    for (const [peer, transfer] of this.#transfers) {
      if (++transfer.idleTicks < RESEND_TICKS) continue;
      transfer.idleTicks = 0;
      transfer.sent = transfer.acked;
      transfer.sentEmpty = false;
      this.#fill(peer, transfer);
    }
  }

  /** Forgets every transfer: this member is no longer the leader that started them. */
  clear(): void {
    this.#transfers.clear();
  }

  get active(): number {
    return this.#transfers.size;
  }

  #fill(peer: NodeId, transfer: Transfer): void {
    const { snapshot } = transfer;
    const total = snapshot.data.length;
    for (;;) {
      // An empty snapshot is still one chunk, so the follower learns it is complete.
      if (transfer.sent >= total && (total > 0 || transfer.sentEmpty)) return;
      if (transfer.sent - transfer.acked >= WINDOW_CHUNKS * SNAPSHOT_CHUNK_BYTES) return;
      const end = Math.min(total, transfer.sent + SNAPSHOT_CHUNK_BYTES);
      this.transport.send(peer, "raft.snapshot", {
        term: transfer.term,
        index: snapshot.index,
        lastTerm: snapshot.term,
        config: snapshot.config,
        offset: transfer.sent,
        total,
        data: snapshot.data.subarray(transfer.sent, end),
      });
      transfer.sent = end;
      transfer.sentEmpty = true;
    }
  }
}

/** Assembles one snapshot at a time from a leader's chunks, in order. */
export class SnapshotReceiver {
  #current: {
    readonly from: NodeId;
    readonly term: number;
    readonly index: number;
    readonly buffer: Uint8Array;
    received: number;
  } | null = null;

  /** Returns the acknowledgement to send, and the whole snapshot once the last chunk is in. */
  onChunk(
    from: NodeId,
    chunk: InstallSnapshot,
  ): { response: InstallSnapshotResponse; complete: ReceivedSnapshot | null } {
    let current = this.#current;
    const same =
      current !== null && current.from === from && current.term === chunk.term && current.index === chunk.index;
    if (!same) {
      current =
        chunk.offset === 0
          ? { from, term: chunk.term, index: chunk.index, buffer: new Uint8Array(chunk.total), received: 0 }
          : null;
      this.#current = current;
    }
    if (current === null || chunk.total !== current.buffer.length) {
      // A chunk from the middle of a transfer we do not hold: ask for it from the start.
      return { response: { term: chunk.term, index: chunk.index, next: 0 }, complete: null };
    }
    if (chunk.offset === current.received && chunk.offset + chunk.data.length <= current.buffer.length) {
      current.buffer.set(chunk.data, chunk.offset);
      current.received += chunk.data.length;
    }
    const response = { term: chunk.term, index: chunk.index, next: current.received };
    if (current.received < current.buffer.length) return { response, complete: null };
    this.#current = null;
    let config: ClusterConfig;
    try {
      config = decodeConfig(chunk.config);
    } catch {
      // Not a snapshot any member of ours wrote: ignore it, as the codec ignores a foreign frame.
      return { response, complete: null };
    }
    return {
      response,
      complete: { term: chunk.term, index: chunk.index, lastTerm: chunk.lastTerm, config, data: current.buffer },
    };
  }
}
