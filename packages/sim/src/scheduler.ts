import { MinHeap } from "@quorate/transport-memory";

/** One pending event on the virtual clock. Cancelled events stay queued and are skipped when reached. */
export interface ScheduledEvent {
  readonly at: number;
  readonly seq: number;
  cancelled: boolean;
  readonly run: () => void;
}

/**
 * The virtual clock and the simulation's event queue, ordered by (time, insertion order), so
 * events at the same virtual millisecond always run in the order they were scheduled.
 */
export class Scheduler {
  #now = 0;
  #seq = 0;
  readonly #queue = new MinHeap<ScheduledEvent>((a, b) => a.at < b.at || (a.at === b.at && a.seq < b.seq));

  /** Virtual milliseconds since the start of the run. */
  get now(): number {
    return this.#now;
  }

  at(time: number, run: () => void): ScheduledEvent {
    const event: ScheduledEvent = { at: Math.max(time, this.#now), seq: this.#seq++, cancelled: false, run };
    this.#queue.push(event);
    return event;
  }

  after(ms: number, run: () => void): ScheduledEvent {
    return this.at(this.#now + ms, run);
  }

  /** Time of the next event that will run, if any. */
  nextAt(): number | undefined {
    for (let head = this.#queue.peek(); head?.cancelled === true; head = this.#queue.peek()) this.#queue.pop();
    return this.#queue.peek()?.at;
  }

  /** Removes the next live event and moves the clock to its time; the caller runs it. */
  take(): ScheduledEvent | undefined {
    if (this.nextAt() === undefined) return undefined;
    const event = this.#queue.pop() as ScheduledEvent;
    this.#now = event.at;
    return event;
  }

  /** Moves the clock forward without running anything (to the time of a network delivery). */
  advanceTo(time: number): void {
    if (time > this.#now) this.#now = time;
  }

  /** A promise that resolves after `ms` virtual milliseconds. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => void this.after(ms, resolve));
  }
}

/** A timer handle: the event of its next firing, replaced each period for intervals. */
interface TimerHandle {
  event: ScheduledEvent | null;
  /** Runs the timer; a firing that falls due while the process is paused waits for the resume. */
  readonly fire: () => void;
}

/**
 * setTimeout/setInterval on the virtual clock, for one incarnation of one member. `rate`
 * stretches every delay, so members' clocks drift apart as real hardware clocks do; `now()` is
 * the member's own monotonic clock, running at the same rate. Structurally the `Timers` that
 * RaftNode accepts.
 */
export class VirtualTimers {
  readonly #live = new Set<TimerHandle>();
  readonly #originMs: number;
  #paused = false;
  /** Timers that fell due during a pause, in the order they did. */
  readonly #overdue = new Set<TimerHandle>();

  constructor(
    private readonly scheduler: Scheduler,
    private readonly rate = 1,
  ) {
    this.#originMs = scheduler.now;
  }

  /** Milliseconds on the member's clock since this incarnation booted. */
  now(): number {
    return (this.scheduler.now - this.#originMs) / this.rate;
  }

  setTimeout(callback: () => void, ms: number): unknown {
    const handle: TimerHandle = {
      event: null,
      fire: () => {
        this.#live.delete(handle);
        handle.event = null;
        callback();
      },
    };
    handle.event = this.scheduler.after(ms * this.rate, () => this.#due(handle));
    this.#live.add(handle);
    return handle;
  }

  setInterval(callback: () => void, ms: number): unknown {
    const period = Math.max(ms * this.rate, Number.EPSILON);
    const handle: TimerHandle = {
      event: null,
      fire: () => {
        handle.event = this.scheduler.after(period, () => this.#due(handle));
        callback();
      },
    };
    handle.event = this.scheduler.after(period, () => this.#due(handle));
    this.#live.add(handle);
    return handle;
  }

  /** The process stops: nothing fires until `resume`, while the clock (`now()`) goes on. */
  pause(): void {
    this.#paused = true;
  }

  /**
   * The process runs again: each timer that fell due meanwhile fires once, now, in the order it
   * fell due (an interval then keeps its period from now, as Node's do).
   */
  resume(): void {
    this.#paused = false;
    for (const handle of this.#overdue) handle.event = this.scheduler.after(0, () => this.#due(handle));
    this.#overdue.clear();
  }

  clearTimeout(handle: unknown): void {
    this.#clear(handle);
  }

  clearInterval(handle: unknown): void {
    this.#clear(handle);
  }

  /** Cancels every timer of this incarnation: a crashed process runs nothing more. */
  cancelAll(): void {
    for (const handle of this.#live) if (handle.event !== null) handle.event.cancelled = true;
    this.#live.clear();
    this.#overdue.clear();
  }

  #due(handle: TimerHandle): void {
    if (!this.#paused) {
      handle.fire();
      return;
    }
    handle.event = null;
    this.#overdue.add(handle);
  }

  #clear(handle: unknown): void {
    const timer = handle as TimerHandle | undefined;
    if (timer === undefined) return;
    this.#live.delete(timer);
    this.#overdue.delete(timer);
    if (timer.event === null) return;
    timer.event.cancelled = true;
    timer.event = null;
  }
}
