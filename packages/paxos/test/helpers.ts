import type { MessageMap, MessageType, NodeId, PaxosBallot, PaxosValue, Timers, Transport } from "@quorate/core";
import { emptyStats } from "@quorate/core";
import { type PaxosMessage, resolvePaxosOptions, resolveTopology } from "../src/internal.js";

export const topology = resolveTopology({
  acceptors: ["a1", "a2", "a3"],
  proposers: ["p1", "p2"],
  learners: ["l1", "l2", "l3"],
});
export const options = resolvePaxosOptions({ heartbeatTicks: 1, leaderTimeoutTicks: 4, retransmitTicks: 3 });

export function msg<T extends MessageType>(type: T, body: MessageMap[T]): PaxosMessage {
  return { type, body } as PaxosMessage;
}

export function command(text: string, origin = "l1", seq = 1): PaxosValue {
  return { kind: 0, data: new TextEncoder().encode(text), origin, seq };
}

export const b = (round: number, proposer: string): PaxosBallot => [round, proposer];

/** A transport that records what a host sends, for durability-ordering tests. */
export class RecordingTransport implements Transport {
  readonly sent: { to: NodeId | null; type: MessageType; body: unknown }[] = [];
  readonly stats = emptyStats();
  handler: ((m: Parameters<Parameters<Transport["listen"]>[0]>[0]) => void) | undefined;
  constructor(
    readonly self: NodeId,
    readonly cluster = "test",
    readonly group = "paxos",
  ) {}
  broadcast<T extends MessageType>(type: T, body: MessageMap[T]): void {
    this.sent.push({ to: null, type, body });
  }
  send<T extends MessageType>(to: NodeId, type: T, body: MessageMap[T]): void {
    this.sent.push({ to, type, body });
  }
  listen(handler: NonNullable<RecordingTransport["handler"]>): void {
    this.handler = handler;
  }
  deliver<T extends MessageType>(from: NodeId, type: T, body: MessageMap[T]): void {
    this.handler?.({ cluster: this.cluster, group: this.group, sender: from, type, body, headers: undefined } as never);
  }
  ofType(type: MessageType) {
    return this.sent.filter((m) => m.type === type);
  }
  async close(): Promise<void> {}
}

/** A durability schedule the test releases by hand. */
export function manualDisk(): { schedule: (makeDurable: () => void) => void; flush(): void; pending(): number } {
  let queue: (() => void)[] = [];
  return {
    schedule: (makeDurable) => queue.push(makeDurable),
    flush() {
      const now = queue;
      queue = [];
      for (const f of now) f();
    },
    pending: () => queue.length,
  };
}

/** Timers whose interval the test fires by hand, one period of the clock each time; timeouts never fire. */
export function handTimers(): { timers: Timers; tick(): void } {
  let tick: (() => void) | undefined;
  let nowMs = 0;
  let periodMs = 0;
  return {
    timers: {
      now: () => nowMs,
      setInterval: (cb: () => void, ms: number) => {
        tick = cb;
        periodMs = ms;
        return 1;
      },
      clearInterval: () => {},
      setTimeout: () => 0,
      clearTimeout: () => {},
    },
    tick: () => {
      nowMs += periodMs;
      tick?.();
    },
  };
}
