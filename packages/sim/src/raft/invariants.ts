import type { EntryKind, MessageMap, MessageType, NodeId } from "@quorate/core";
import type { LogEntry, RaftNode, RaftObservation } from "@quorate/raft/internal";
import type { HardState, RaftState, RaftWrite } from "@quorate/storage";
import type { Violation } from "../protocol.js";

/** The invariants checked for Raft; each is a `Violation.kind`. */
export type RaftInvariant =
  /** At most one leader per term, over the whole run. */
  | "election-safety"
  /** A leader never removes or changes entries of its log while it leads. */
  | "leader-append-only"
  /** Two logs with an entry of the same index and term hold the same entries up to it. */
  | "log-matching"
  /** An entry committed in a term is in the log of every leader of a later term. */
  | "leader-completeness"
  /** No two members commit or apply different entries at one index. */
  | "state-machine-safety"
  /** A member's term never goes back, in memory or on disk, across restarts too. */
  | "term-regression"
  /** A member's commit index never goes back, in memory or on disk, across restarts too. */
  | "commit-regression"
  /** A member's vote in a term never changes once cast: at most one vote per term, across restarts too. */
  | "double-vote"
  /** A restarted member recovers exactly what was durable when it crashed. */
  | "durability"
  /**
   * A leader's configuration differs from the committed one by at most one voter, so every
   * majority of the one overlaps every majority of the other (thesis §4.1).
   */
  | "membership-overlap"
  /**
   * No message leaves a member carrying a term its disk does not hold yet (with the vote cast in
   * it): a crash would bring it back in the older term, free to use the same term again.
   */
  | "durable-term-before-send"
  /** A member refused a message that no correct peer can have sent: here every peer is correct. */
  | "protocol-violation"
  /** A member's machine threw or its host stopped on an internal error. */
  | "member-failure";

interface CanonicalEntry {
  readonly term: number;
  readonly kind: EntryKind;
  readonly data: Uint8Array;
}

interface CommittedEntry extends CanonicalEntry {
  /** Term of the member that first showed the entry committed: at or after the term it committed in. */
  readonly commitTerm: number;
}

/** What one incarnation of a member looked like at the last check. */
interface IncarnationTrack {
  term: number;
  commit: number;
  applied: number;
  /** The entry objects already checked for log matching, by index: logs change only at their end. */
  readonly checked: (LogEntry | undefined)[];
  /** While leading: the term, and the last entry at the last check (leader append-only). */
  leading: { readonly term: number; lastIndex: number; lastEntry: LogEntry | undefined } | null;
  /** Votes this incarnation asked storage to persist, by term. */
  readonly requestedVotes: Map<number, NodeId>;
}

/** What is durable on one member's disk, rebuilt from the writes storage acknowledged. */
interface DurableTrack {
  hardState: HardState;
  /** The durable snapshot's last index and term (0 without one); `entries` follow it. */
  snapshotIndex: number;
  snapshotTerm: number;
  entries: CanonicalEntry[];
  /** Every durable vote of the run, by term. */
  readonly votes: Map<number, NodeId>;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0;
}

function sameEntry(a: CanonicalEntry, b: CanonicalEntry): boolean {
  return a.term === b.term && a.kind === b.kind && sameBytes(a.data, b.data);
}

/**
 * Raft's safety properties (Figure 3 of the paper) and durability rules, checked after every
 * step of a simulation. Every check is incremental: per step it looks only at what changed.
 */
export class RaftInvariants {
  #violation: Violation | null = null;
  readonly #leaders = new Map<number, NodeId>();
  /** Per index, per term: the entry and the term of the entry before it. Log matching by induction. */
  readonly #canonical: Map<number, { readonly entry: CanonicalEntry; readonly prevTerm: number }>[] = [];
  readonly #committed: (CommittedEntry | undefined)[] = [];
  readonly #applied: (CanonicalEntry | undefined)[] = [];
  /** Real votes granted, as the candidates counted them: "voter/term" → candidate. */
  readonly #grants = new Map<string, NodeId>();
  readonly #incarnations = new Map<NodeId, IncarnationTrack>();
  readonly #durable = new Map<NodeId, DurableTrack>();
  /** The highest commit index of any leader and applied index of any member so far, crashed ones included. */
  #highestCommitted = 0;
  #highestElectedTerm = 0;
  /** When each leader first sent each heartbeat round: "leader/term/round" → virtual ms. */
  readonly #roundSentAt = new Map<string, number>();
  /** Per "leader/term", per member: when the latest round it answered in that term was first sent. */
  readonly #roundsAnswered = new Map<string, Map<NodeId, number>>();

  /** The highest term a leader was elected in, over the whole run. */
  get highestElectedTerm(): number {
    return this.#highestElectedTerm;
  }

  /** Records a violation noticed between steps; the first one is reported. */
  fail(kind: RaftInvariant, message: string): void {
    this.#violation ??= { kind, message };
  }

  started(member: NodeId): void {
    this.#incarnations.set(member, {
      term: 0,
      commit: 0,
      applied: 0,
      checked: [undefined],
      leading: null,
      requestedVotes: new Map(),
    });
  }

  crashed(member: NodeId): void {
    this.#incarnations.delete(member);
  }

  /**
   * A message `member` is about to send at virtual time `now`: its term must already be durable
   * there. Heartbeat rounds and the answers to them are noted for the read-quorum invariant.
   */
  sending(member: NodeId, type: MessageType, body: MessageMap[MessageType], to: NodeId | null, now: number): void {
    if (type === "raft.append") this.#roundSent(member, body as MessageMap["raft.append"], now);
    if (type === "raft.append.resp" && to !== null)
      this.#roundAnswered(member, to, body as MessageMap["raft.append.resp"], now);
    if (!type.startsWith("raft.") || !("term" in body)) return;
    // A pre-vote asks about (and its grant answers for) a term nobody has entered yet. A snapshot
    // chunk's receipt is the host's flow control: it names the transfer by the chunk's term and
    // promises nothing in it; the member's acknowledgement of the whole snapshot is a Raft
    // message like any other.
    if (("preVote" in body && body.preVote) || type === "raft.snapshot.resp") return;
    const durableTerm = this.#durable.get(member)?.hardState.term ?? 0;
    if (body.term > durableTerm) {
      this.fail(
        "durable-term-before-send",
        `${member} sent ${type} of term ${body.term} while its disk holds term ${durableTerm}`,
      );
    }
  }

  #roundSent(leader: NodeId, append: MessageMap["raft.append"], now: number): void {
    const key = `${leader}/${append.term}/${append.seq}`;
    if (!this.#roundSentAt.has(key)) this.#roundSentAt.set(key, now);
  }

  /**
   * `member` answers `leader`'s round in the answer's term: it took an AppendEntries of that
   * round up while in that term. An answer naming a round the leader had not sent by now in that
   * term (a refusal echoing an older term's round) proves nothing and is not counted; nor is
   * round 0, which a refusal of an older term's message carries and no read waits for.
   */
  #roundAnswered(member: NodeId, leader: NodeId, answer: MessageMap["raft.append.resp"], now: number): void {
    if (answer.seq === 0) return;
    const sentAt = this.#roundSentAt.get(`${leader}/${answer.term}/${answer.seq}`);
    if (sentAt === undefined || sentAt > now) return;
    const key = `${leader}/${answer.term}`;
    let answered = this.#roundsAnswered.get(key);
    if (answered === undefined) {
      answered = new Map();
      this.#roundsAnswered.set(key, answered);
    }
    answered.set(member, Math.max(answered.get(member) ?? -1, sentAt));
  }

  /**
   * ReadIndex (thesis §6.4) checked as the rule itself rather than through its consequences: the
   * leader of `term` answered a read that reached it at `takenAt` (virtual ms). Before that, a
   * quorum of its voters (in the configuration when the read arrived or when it was answered)
   * must have answered, in `term`, a heartbeat round first sent at or after `takenAt`; the leader
   * counts for itself if it is a voter. Returns what was missing, or null. Lease reads are not
   * checked here (deposed-leader-read checks them).
   */
  readQuorumMissing(
    leader: NodeId,
    term: number,
    voterSets: readonly (readonly NodeId[])[],
    takenAt: number,
  ): string | null {
    const answered = this.#roundsAnswered.get(`${leader}/${term}`);
    const confirmed = (voter: NodeId) => voter === leader || (answered?.get(voter) ?? -1) >= takenAt;
    if (voterSets.some((voters) => 2 * voters.filter(confirmed).length > voters.length)) return null;
    const voters = voterSets[voterSets.length - 1] ?? [];
    return (
      `${leader} answered a read that reached it at ${takenAt}ms as leader of term ${term}, but of voters ` +
      `[${voters.join(",")}] only [${voters.filter(confirmed).join(",")}] answered a heartbeat round of that term sent since`
    );
  }

  observed(member: NodeId, observation: RaftObservation): void {
    if (observation.kind === "refused") {
      this.fail("protocol-violation", `${member} refused a message from ${observation.from}: ${observation.reason}`);
    }
    if (observation.kind === "role" && observation.role === "leader") this.#leader(member, observation.term);
    if (observation.kind === "vote" && observation.granted && !observation.preVote) {
      const key = `${observation.from}/${observation.term}`;
      const earlier = this.#grants.get(key);
      if (earlier !== undefined && earlier !== member) {
        this.fail(
          "double-vote",
          `${observation.from} granted its term-${observation.term} vote to ${earlier} and to ${member}`,
        );
      }
      this.#grants.set(key, member);
    }
  }

  /**
   * A write the member handed to storage: not durable yet, but it shows the member's vote. A
   * vote never changes within a term once cast, not to another candidate and not back to none
   * (a member that forgot its vote may cast it again), across restarts too.
   */
  writeRequested(member: NodeId, write: RaftWrite): void {
    if (write.hardState === undefined) return;
    const { term, vote } = write.hardState;
    const requested = this.#incarnations.get(member)?.requestedVotes;
    const cast = requested?.get(term) ?? this.#durableOf(member).votes.get(term);
    if (cast !== undefined && cast !== vote) {
      this.fail(
        "double-vote",
        vote === null
          ? `${member} forgot its term-${term} vote for ${cast}`
          : `${member} voted for ${cast} in term ${term}, now votes for ${vote}`,
      );
    }
    if (vote !== null) requested?.set(term, vote);
  }

  /** A write storage acknowledged as durable; writes become durable in call order. */
  writeDurable(member: NodeId, write: RaftWrite): void {
    const durable = this.#durableOf(member);
    const { hardState, truncateFrom, entries, snapshot } = write;
    // The parts apply in storage's order: truncation, snapshot installation, append.
    if (truncateFrom !== undefined) {
      durable.entries.length = Math.min(durable.entries.length, truncateFrom - 1 - durable.snapshotIndex);
    }
    if (snapshot !== undefined) {
      const covered = snapshot.index - durable.snapshotIndex;
      durable.entries = covered <= durable.entries.length ? durable.entries.slice(covered) : [];
      durable.snapshotIndex = snapshot.index;
      durable.snapshotTerm = snapshot.term;
    }
    for (const entry of entries ?? []) durable.entries.push({ term: entry.term, kind: entry.kind, data: entry.data });
    if (hardState === undefined) return;
    const before = durable.hardState;
    if (hardState.term < before.term) {
      this.fail("term-regression", `${member}'s durable term went from ${before.term} back to ${hardState.term}`);
    }
    if (hardState.commit < before.commit) {
      this.fail(
        "commit-regression",
        `${member}'s durable commit went from ${before.commit} back to ${hardState.commit}`,
      );
    }
    if (hardState.vote !== null) {
      const earlier = durable.votes.get(hardState.term);
      if (earlier !== undefined && earlier !== hardState.vote) {
        this.fail(
          "double-vote",
          `${member} durably voted for ${earlier} and for ${hardState.vote} in term ${hardState.term}`,
        );
      }
      durable.votes.set(hardState.term, hardState.vote);
    }
    durable.hardState = { ...hardState };
  }

  /** What a restarting member loaded from its disk: exactly the durable state, nothing lost, nothing extra. */
  loaded(member: NodeId, state: RaftState): void {
    const durable = this.#durableOf(member);
    const { term, vote, commit } = durable.hardState;
    const got = state.hardState;
    if (got.term !== term || got.vote !== vote || got.commit !== commit) {
      this.fail(
        "durability",
        `${member} recovered term ${got.term}, vote ${got.vote}, commit ${got.commit}; ` +
          `durable were term ${term}, vote ${vote}, commit ${commit}`,
      );
      return;
    }
    const snapshotIndex = state.snapshot?.index ?? 0;
    const snapshotTerm = state.snapshot?.term ?? 0;
    if (snapshotIndex !== durable.snapshotIndex || snapshotTerm !== durable.snapshotTerm) {
      this.fail(
        "durability",
        `${member} recovered a snapshot at ${snapshotIndex} (term ${snapshotTerm}); ` +
          `durable was one at ${durable.snapshotIndex} (term ${durable.snapshotTerm})`,
      );
      return;
    }
    const entries = state.entries;
    const firstMismatch = durable.entries.findIndex((entry, i) => {
      const loaded = entries[i];
      return loaded === undefined || loaded.index !== snapshotIndex + i + 1 || !sameEntry(entry, loaded);
    });
    if (firstMismatch >= 0 || entries.length !== durable.entries.length) {
      this.fail(
        "durability",
        `${member} recovered ${entries.length} entries after index ${snapshotIndex}, ${durable.entries.length} were durable` +
          (firstMismatch >= 0 ? `; entry ${snapshotIndex + firstMismatch + 1} differs` : ""),
      );
    }
  }

  /** Checks every running member after a step; returns the first violation of the run. */
  check(nodes: ReadonlyMap<NodeId, RaftNode>): Violation | null {
    if (this.#violation !== null) return this.#violation;
    const leaders: { id: NodeId; node: RaftNode; term: number }[] = [];
    const newlyCommitted: number[] = [];
    for (const [id, node] of nodes) {
      const track = this.#incarnations.get(id);
      if (track === undefined) continue;
      if (node.failure !== null) this.fail("member-failure", `${id} stopped: ${node.failure.message}`);
      const status = node.status();
      if (status.term < track.term)
        this.fail("term-regression", `${id}'s term went from ${track.term} to ${status.term}`);
      if (status.commitIndex < track.commit) {
        this.fail("commit-regression", `${id}'s commit index went from ${track.commit} to ${status.commitIndex}`);
      }
      track.term = status.term;
      this.#checkLog(id, node, track);
      if (status.role === "leader") {
        this.#leader(id, status.term);
        this.#checkLeaderAppendOnly(id, node, track, status.term);
        this.#checkMembershipOverlap(id, node);
        leaders.push({ id, node, term: status.term });
      } else {
        track.leading = null;
      }
      for (let index = track.commit + 1; index <= status.commitIndex; index++) {
        if (this.#commit(id, node, index, status.term)) newlyCommitted.push(index);
      }
      track.commit = Math.max(track.commit, status.commitIndex);
      for (let index = track.applied + 1; index <= node.appliedIndex; index++) this.#apply(id, node, index);
      track.applied = Math.max(track.applied, node.appliedIndex);
      this.#noteCommitted(node, status.role === "leader" ? status.commitIndex : 0);
    }
    for (const index of newlyCommitted) {
      const committed = this.#committed[index] as CommittedEntry;
      for (const leader of leaders) {
        if (leader.term > committed.commitTerm) this.#checkHasCommitted(leader.id, leader.node, leader.term, index);
      }
    }
    return this.#violation;
  }

  /**
   * The stale-read floor now: the highest index a leader committed or a member applied so far.
   * Followers' commit indexes are not needed: each is one a leader had committed before. A
   * correct ReadIndex read is never below it: the leader has committed an entry of its term, so
   * its log holds every entry committed before (leader completeness) and its commit index covers
   * them; the heartbeat round a quorum acknowledges after the read arrived shows that no leader
   * of a later term existed when it arrived; and the read waits until the member applied that
   * commit index. A lease stands for that heartbeat round. So a read below the floor at its
   * invocation saw a state older than one the cluster had already committed.
   */
  highestCommitted(nodes: ReadonlyMap<NodeId, RaftNode>): number {
    for (const node of nodes.values()) {
      const status = node.status();
      this.#noteCommitted(node, status.role === "leader" ? status.commitIndex : 0);
    }
    return this.#highestCommitted;
  }

  #noteCommitted(node: RaftNode, leaderCommit: number): void {
    this.#highestCommitted = Math.max(this.#highestCommitted, leaderCommit, node.appliedIndex);
  }

  #durableOf(member: NodeId): DurableTrack {
    let durable = this.#durable.get(member);
    if (durable === undefined) {
      durable = {
        hardState: { term: 0, vote: null, commit: 0 },
        snapshotIndex: 0,
        snapshotTerm: 0,
        entries: [],
        votes: new Map(),
      };
      this.#durable.set(member, durable);
    }
    return durable;
  }

  /**
   * A leadership counts (for election safety and the deposed-leader-read floor) once the
   * leader's own vote is durable. Before that only a one-voter leader can have won (any other
   * candidate asks for votes only once its term is durable), nothing of the term has left it
   * (durable-term-before-send), and a crash takes the election back: the member may return in an
   * older term, vote for another candidate in that same term, or lead an older one, legitimately.
   * The check after every step records it as soon as the vote is on disk.
   */
  #leader(member: NodeId, term: number): void {
    if ((this.#durable.get(member)?.hardState.term ?? 0) < term) return;
    const earlier = this.#leaders.get(term);
    if (earlier !== undefined && earlier !== member) {
      this.fail("election-safety", `${earlier} and ${member} were both leaders in term ${term}`);
    }
    this.#leaders.set(term, member);
    this.#highestElectedTerm = Math.max(this.#highestElectedTerm, term);
  }

  /**
   * Log matching, by induction over indexes: every (index, term) in any log must carry the same
   * entry and follow the same term everywhere. Only entries new since the last check are
   * compared: logs change only at their end, and every changed entry is a new object.
   *
   * An entry of a term the member has not made durable yet joins the comparison once it has:
   * until then it exists in this incarnation's memory alone (durable-term-before-send checks that
   * nothing of that term left), and a crash takes the term back with it, so the member may
   * legitimately enter the same term again and write another entry at the same index.
   */
  #checkLog(id: NodeId, node: RaftNode, track: IncarnationTrack): void {
    const log = node.log;
    const durableTerm = this.#durable.get(id)?.hardState.term ?? 0;
    let last = log.lastIndex;
    while (last >= log.firstIndex && (log.term(last) ?? 0) > durableTerm) last--;
    let unchanged = Math.min(last, track.checked.length - 1);
    while (unchanged >= log.firstIndex && log.entry(unchanged) !== track.checked[unchanged]) unchanged--;
    track.checked.length = Math.max(unchanged, log.firstIndex - 1) + 1;
    for (let index = track.checked.length; index <= last; index++) {
      const entry = log.entry(index) as LogEntry;
      const prevTerm = log.term(index - 1) ?? 0;
      let atIndex = this.#canonical[index];
      if (atIndex === undefined) {
        atIndex = new Map();
        this.#canonical[index] = atIndex;
      }
      const known = atIndex.get(entry.term);
      if (known === undefined) {
        atIndex.set(entry.term, { entry, prevTerm });
      } else if (known.prevTerm !== prevTerm || !sameEntry(known.entry, entry)) {
        this.fail(
          "log-matching",
          `${id} holds a different entry (index ${index}, term ${entry.term}) than another log: ` +
            (known.prevTerm !== prevTerm ? `previous term ${prevTerm} vs ${known.prevTerm}` : "different data"),
        );
      }
      track.checked[index] = entry;
    }
  }

  #checkLeaderAppendOnly(id: NodeId, node: RaftNode, track: IncarnationTrack, term: number): void {
    const log = node.log;
    const leading = track.leading;
    if (leading === null || leading.term !== term) {
      // Newly leading: it must hold every entry committed in an earlier term.
      for (let index = 1; index < this.#committed.length; index++) {
        const committed = this.#committed[index];
        if (committed !== undefined && term > committed.commitTerm) this.#checkHasCommitted(id, node, term, index);
      }
    } else if (
      log.lastIndex < leading.lastIndex ||
      // Compaction may drop the entry from memory; a snapshot only ever covers committed entries.
      (leading.lastIndex >= log.firstIndex && log.entry(leading.lastIndex) !== leading.lastEntry)
    ) {
      this.fail(
        "leader-append-only",
        `${id}, leader of term ${term}, removed or replaced entries at or before index ${leading.lastIndex}`,
      );
    }
    track.leading = { term, lastIndex: log.lastIndex, lastEntry: log.entry(log.lastIndex) };
  }

  #checkMembershipOverlap(id: NodeId, node: RaftNode): void {
    const log = node.log;
    const committedIndex = Math.max(log.snapshotIndex, Math.min(this.#committed.length - 1, log.lastIndex));
    const committed = log.configAt(committedIndex).voters;
    const latest = log.config;
    const changed = [
      ...latest.voters.filter((v) => !committed.includes(v)),
      ...committed.filter((v) => !latest.voters.includes(v)),
    ];
    if (changed.length > 1) {
      this.fail(
        "membership-overlap",
        `${id}'s configuration at ${latest.index} (voters ${latest.voters.join(",")}) differs from the committed one ` +
          `(voters ${committed.join(",")}) in ${changed.length} voters: two majorities may not overlap`,
      );
    }
  }

  #checkHasCommitted(id: NodeId, node: RaftNode, term: number, index: number): void {
    const committed = this.#committed[index] as CommittedEntry;
    const entry = index >= node.log.firstIndex ? node.log.entry(index) : committed;
    if (entry === undefined || !sameEntry(entry, committed)) {
      this.fail(
        "leader-completeness",
        `${id}, leader of term ${term}, lacks entry ${index} (term ${committed.term}) committed by term ${committed.commitTerm}` +
          (entry === undefined ? "" : `; it holds term ${entry.term} there`),
      );
    }
  }

  /** Records index as committed on `id`; true if no member had shown it committed before. */
  #commit(id: NodeId, node: RaftNode, index: number, term: number): boolean {
    const entry = node.log.entry(index);
    // Beyond the log end the host fails on its own (reported as member-failure); compacted entries were checked before.
    if (entry === undefined) return false;
    const committed = this.#committed[index];
    if (committed === undefined) {
      this.#committed[index] = { term: entry.term, kind: entry.kind, data: entry.data, commitTerm: term };
      return true;
    }
    if (!sameEntry(committed, entry)) {
      this.fail(
        "state-machine-safety",
        `${id} committed entry ${index} of term ${entry.term}; term ${committed.term} was committed there before`,
      );
    }
    return false;
  }

  #apply(id: NodeId, node: RaftNode, index: number): void {
    const entry = node.log.entry(index);
    if (entry === undefined) return;
    const applied = this.#applied[index];
    if (applied === undefined) this.#applied[index] = entry;
    else if (!sameEntry(applied, entry)) {
      this.fail(
        "state-machine-safety",
        `${id} applied entry ${index} of term ${entry.term}; another member applied term ${applied.term} there`,
      );
    }
  }
}
