import type { OutboundMessage } from "./host.js";
import type { NodeId } from "./ids.js";
import type { MessageMap, MessageType } from "./messages.js";

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
  protected takeCommon(): { messages: OutboundMessage[]; observations: Observation[] } {
    const taken = { messages: this.messages, observations: this.observations };
    this.messages = [];
    this.observations = [];
    return taken;
  }
}
