import { packValue, type StateMachine, unpackValue } from "@quorate/core";
import { ManualTimers } from "@quorate/core/internal";
import { MemoryRaftStorage } from "@quorate/storage";
import { MemoryDisk } from "@quorate/storage/internal";
import { MemoryNetwork, type MemoryTransport } from "@quorate/transport-memory";
import { RaftNode, type RaftNodeOptions } from "../src/index.js";

/** A state machine that appends every command to a list; apply returns the list's length. */
export class ListMachine implements StateMachine {
  items: string[] = [];
  apply(command: Uint8Array): Uint8Array {
    this.items.push(new TextDecoder().decode(command));
    return packValue(this.items.length);
  }
  snapshot(): Uint8Array {
    return packValue(this.items);
  }
  restore(snapshot: Uint8Array): void {
    this.items = unpackValue(snapshot) as string[];
  }
}

export const encode = (s: string) => new TextEncoder().encode(s);

/**
 * RaftNodes in one process over the in-memory network (auto delivery) and in-memory disks,
 * with real timers at a fast tick: for host-level tests that need no NATS.
 */
export class LocalCluster {
  readonly network = new MemoryNetwork();
  readonly disks = new Map<string, MemoryDisk>();
  readonly nodes = new Map<string, RaftNode>();
  readonly machines = new Map<string, ListMachine>();
  readonly #transports = new Map<string, MemoryTransport>();

  constructor(
    readonly ids: string[],
    private readonly extra: Partial<RaftNodeOptions> = {},
  ) {
    for (const id of ids) this.disks.set(id, new MemoryDisk());
  }

  async start(id: string): Promise<RaftNode> {
    const machine = new ListMachine();
    const transport = this.network.connect({ cluster: "test", group: "kv", self: id });
    this.#transports.set(id, transport);
    const node = await RaftNode.start({
      id,
      members: this.ids,
      transport,
      storage: new MemoryRaftStorage(this.disks.get(id) as MemoryDisk),
      stateMachine: machine,
      tickMs: 10,
      ...this.extra,
      // Ticks follow real time: election timeouts of 300-600 ms ride out the event-loop stalls
      // of a loaded test machine (100 ms would start elections the tests do not expect).
      raft: { electionTicks: 30, ...this.extra.raft },
    });
    this.nodes.set(id, node);
    this.machines.set(id, machine);
    return node;
  }

  async startAll(): Promise<void> {
    for (const id of this.ids) await this.start(id);
  }

  node(id: string): RaftNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  async leader(timeoutMs = 5000): Promise<RaftNode> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const leaders = [...this.nodes.values()].filter((n) => n.role() === "leader");
      if (leaders.length === 1) return leaders[0] as RaftNode;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error("no single leader elected");
  }

  async waitFor(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > deadline) throw new Error("condition not reached in time");
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Stops a node as a crash would: unsynced writes are lost, its transport detached. */
  async crash(id: string): Promise<void> {
    this.node(id).kill();
    this.nodes.delete(id);
    this.disks.get(id)?.crash();
    await this.#transports.get(id)?.close();
  }

  async stopAll(): Promise<void> {
    for (const node of this.nodes.values()) await node.stop();
    this.nodes.clear();
  }
}

/**
 * RaftNodes on hand-moved clocks, one per member, over the in-memory network (manual delivery)
 * and in-memory disks: the test moves time a millisecond at a step, and can pause a member's
 * process (its timers stop firing while its clock goes on), as a GC pause or SIGSTOP does.
 */
export class HandClockCluster {
  nowMs = 0;
  readonly network = new MemoryNetwork({ now: () => this.nowMs, delivery: "manual" });
  readonly nodes = new Map<string, RaftNode>();
  readonly machines = new Map<string, ListMachine>();
  readonly timers = new Map<string, ManualTimers>();
  readonly paused = new Set<string>();

  constructor(
    readonly ids: string[],
    private readonly extra: Partial<RaftNodeOptions> = {},
  ) {}

  async startAll(): Promise<void> {
    for (const id of this.ids) {
      const machine = new ListMachine();
      const timers = new ManualTimers();
      const node = await RaftNode.start({
        id,
        members: this.ids,
        transport: this.network.connect({ cluster: "test", group: "kv", self: id }),
        storage: new MemoryRaftStorage(new MemoryDisk()),
        stateMachine: machine,
        tickMs: 10,
        timers,
        ...this.extra,
      });
      this.nodes.set(id, node);
      this.machines.set(id, machine);
      this.timers.set(id, timers);
    }
  }

  node(id: string): RaftNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  /** Moves every clock `ms` forward a millisecond at a time: timers fire (not a paused member's), messages arrive, writes complete. */
  async run(ms: number): Promise<void> {
    for (let i = 0; i < ms; i++) {
      this.nowMs++;
      for (const [id, timers] of this.timers) {
        if (this.paused.has(id)) timers.pause(1);
        else timers.advance(1);
      }
      this.network.deliverDue();
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** Runs until `predicate` holds, for at most `limitMs`. */
  async runUntil(predicate: () => boolean, limitMs = 5_000): Promise<void> {
    for (let ms = 0; !predicate(); ms++) {
      if (ms >= limitMs) throw new Error(`condition not reached within ${limitMs} ms`);
      await this.run(1);
    }
  }

  /** The one member that believes it leads, once there is exactly one. */
  async leader(): Promise<RaftNode> {
    const leaders = () => [...this.nodes.values()].filter((n) => n.role() === "leader");
    await this.runUntil(() => leaders().length === 1);
    return leaders()[0] as RaftNode;
  }

  async stopAll(): Promise<void> {
    for (const node of this.nodes.values()) node.kill();
    this.nodes.clear();
  }
}
