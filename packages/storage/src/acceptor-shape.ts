import { compareBallots, type PaxosBallot } from "@quorate/core";
import { invariant } from "@quorate/core/internal";
import type { AcceptorWrite } from "./acceptor-types.js";

/**
 * The promise and truncation point as they will be once every accepted write is durable, so
 * that each write is checked against what the writes before it leave behind: neither may go back.
 */
export class AcceptorShape {
  constructor(
    private promised: PaxosBallot,
    private truncated: number,
  ) {}

  accept(write: AcceptorWrite): void {
    const { promised, truncateThrough, accepted } = write;
    if (truncateThrough !== undefined) {
      invariant(
        Number.isSafeInteger(truncateThrough) && truncateThrough >= this.truncated,
        `truncation would go back from ${this.truncated} to ${truncateThrough}`,
      );
    }
    if (promised !== undefined) {
      invariant(
        compareBallots(promised, this.promised) >= 0,
        `promise would go back from ${this.promised} to ${promised}`,
      );
    }
    for (const acceptance of accepted ?? []) {
      invariant(
        Number.isSafeInteger(acceptance.slot) && acceptance.slot >= 1,
        `slot must be >= 1, got ${acceptance.slot}`,
      );
    }
    if (truncateThrough !== undefined) this.truncated = truncateThrough;
    if (promised !== undefined) this.promised = promised;
  }
}
