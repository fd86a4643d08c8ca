import type { OutboundMessage } from "./host.js";
import type { NodeId } from "./ids.js";
import type { MessageMap, MessageType } from "./schema.js";

/**
 * What every protocol machine asks its host to do, accumulated in place by the machine and
 * drained by the host after each event: messages to send and observations to report. Each
 * protocol's outbox extends it with the effects of its own (entries to write, promises, …).
 */
export class HostOutbox<Observation> {
  messages: OutboundMessage[] = [];
  /** For logs, traces, metrics and the simulator's checks; they never feed back into the protocol. */
  observations: Observation[] = [];

  send<T extends MessageType>(to: NodeId | null, type: T, body: MessageMap[T], afterPersist: boolean): void {
    this.messages.push({ to, type, body, afterPersist } as OutboundMessage);
  }

  observe(observation: Observation): void {
    this.observations.push(observation);
  }

  /** Hands over the messages and observations accumulated so far and starts a new batch of them. */
  protected takeCommon(): { messages: readonly OutboundMessage[]; observations: readonly Observation[] } {
    const messages = handOver(this.messages);
    if (messages.length > 0) this.messages = [];
    const observations = handOver(this.observations);
    if (observations.length > 0) this.observations = [];
    return { messages, observations };
  }
}

const NOTHING: readonly never[] = Object.freeze([]);

/**
 * What an outbox hands over of one of its lists: the list itself, or one shared empty list when
 * there is nothing (the host drains after every event, and most events fill few lists). The
 * caller starts a new list only when this one was handed over non-empty.
 */
export function handOver<T>(list: readonly T[]): readonly T[] {
  return list.length === 0 ? NOTHING : list;
}
