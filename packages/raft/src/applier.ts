import { EntryKind, ErrorCode, type Logger, type NodeId, QuorateError, type StateMachine } from "@quorate/core";
import { asError, invariant } from "@quorate/core/internal";
import type { StoredSnapshot } from "@quorate/storage";
import { encodeConfig } from "./config.js";
import type { RaftLog } from "./log.js";
import type { SnapshotInstall } from "./outbox.js";
import type { RaftRequests } from "./requests.js";
import type { RaftTelemetry } from "./telemetry.js";
import type { RaftWrites } from "./writes.js";

export interface RaftApplierOptions {
  readonly id: NodeId;
  readonly log: RaftLog;
  readonly stateMachine: StateMachine;
  /** The index the state machine starts from: that of the snapshot it was restored from, or 0. */
  readonly applied: number;
  /** Entries applied since the last snapshot that trigger a new one. */
  readonly snapshotThreshold: number;
  readonly commitIndex: () => number;
  readonly requests: RaftRequests;
  readonly writes: RaftWrites;
  readonly telemetry: RaftTelemetry;
  readonly logger: Logger;
  /** The state machine threw, or the log lost a committed entry: the node must stop. */
  readonly fail: (err: Error) => void;
}

/**
 * Applies committed entries to the state machine in log order and settles the callers waiting
 * for them; takes a snapshot once enough entries were applied since the last one; restores a
 * snapshot the leader sent.
 */
export class RaftApplier {
  #applied: number;

  constructor(private readonly options: RaftApplierOptions) {
    this.#applied = options.applied;
  }

  get applied(): number {
    return this.#applied;
  }

  /**
   * The state machine's snapshot at the applied index, with that index's term and the
   * configuration in force there. Synchronous, so the index and the state cannot move apart.
   */
  snapshotAtApplied(): StoredSnapshot {
    const { log, stateMachine } = this.options;
    const index = this.#applied;
    const term = log.term(index);
    invariant(term !== undefined, `applied index ${index} has no term in the log`);
    return { index, term, config: encodeConfig(log.configAt(index)), data: stateMachine.snapshot() };
  }

  /** Applies every committed entry not applied yet. */
  apply(): void {
    const { log, stateMachine, requests } = this.options;
    const commit = this.options.commitIndex();
    while (this.#applied < commit) {
      const index = this.#applied + 1;
      const entry = log.entry(index);
      if (entry === undefined) {
        this.options.fail(new QuorateError(ErrorCode.Invariant, `committed entry ${index} is missing from the log`));
        return;
      }
      // A configuration entry's result is the configuration: what a waiting change resolves with.
      let result: Uint8Array | null = entry.kind === EntryKind.Config ? entry.data : null;
      if (entry.kind === EntryKind.Command) {
        try {
          result = stateMachine.apply(entry.data, index);
        } catch (err) {
          // Replicas must not diverge: a state machine that throws stops this node.
          this.options.fail(asError(err));
          return;
        }
      }
      this.#applied = index;
      requests.applied(index, entry.term, result);
    }
    this.options.telemetry.applied(this.#applied, (i) => log.term(i));
    this.#maybeSnapshot();
    requests.appliedThrough(this.#applied);
  }

  /** A snapshot from the leader replaces our state; it is written with the next write. */
  install(install: SnapshotInstall): void {
    try {
      this.options.stateMachine.restore(install.data);
    } catch (err) {
      this.options.fail(asError(err));
      return;
    }
    this.#applied = install.index;
    this.options.logger.info("installed a snapshot from the leader", {
      member: this.options.id,
      index: install.index,
      bytes: install.data.length,
      keptLog: !install.discardLog,
    });
    this.options.writes.addSnapshot(
      { index: install.index, term: install.term, config: encodeConfig(install.config), data: install.data },
      install.discardLog,
      false,
    );
  }

  /** Takes a snapshot of the state machine once enough entries were applied since the last. */
  #maybeSnapshot(): void {
    const { writes, log } = this.options;
    if (writes.snapshotting || this.#applied - writes.snapshotIndex < this.options.snapshotThreshold) return;
    const index = this.#applied;
    const term = log.term(index);
    if (term === undefined) return;
    writes.addSnapshot(
      { index, term, config: encodeConfig(log.configAt(index)), data: this.options.stateMachine.snapshot() },
      false,
      true,
    );
    writes.flush();
  }
}
