import type { NodeId } from "@quorate/core";

/** What one member knows of one group: who leads it (null: nobody it knows of) and who votes. */
export interface GroupLeadership {
  readonly group: string;
  readonly leader: NodeId | null;
  readonly voters: readonly NodeId[];
}

/** Leadership of `group` to hand from `from` (this member) to `to`. */
export interface LeadershipMove {
  readonly group: string;
  readonly from: NodeId;
  readonly to: NodeId;
}

/**
 * The leadership transfers member `self` should make so that leaders spread across members.
 * The rule, the same on every member so that they need not agree on anything else:
 *
 * - a member may lead at most `ceil(groups / members)` groups, members being every voter of
 *   any group;
 * - a member leading more hands the excess away, its groups taken in name order from the last,
 *   each to the voter of that group leading fewest now (ties: the lowest id), and only when
 *   that voter stays within the limit afterwards.
 *
 * Each member moves only groups it leads, so no two members move the same group; a receiver
 * never goes over the limit, so moves cannot chase each other round. With 3 members and 6
 * groups it ends with each member leading 2. Pure: the host calls it with its own view, which
 * may be stale; a move made on a stale view is at worst undone by the receiver's next call.
 */
export function placeLeaders(self: NodeId, groups: readonly GroupLeadership[]): LeadershipMove[] {
  const members = [...new Set(groups.flatMap((g) => g.voters))].sort();
  if (members.length === 0 || !members.includes(self)) return [];
  const limit = Math.ceil(groups.length / members.length);
  const led = new Map<NodeId, number>(members.map((m) => [m, 0]));
  for (const { leader } of groups) {
    if (leader !== null && led.has(leader)) led.set(leader, (led.get(leader) ?? 0) + 1);
  }
  const count = (member: NodeId) => led.get(member) ?? 0;
  const mine = groups
    .filter((g) => g.leader === self)
    .sort((a, b) => (a.group < b.group ? 1 : a.group > b.group ? -1 : 0));
  const moves: LeadershipMove[] = [];
  for (const group of mine) {
    if (count(self) <= limit) break;
    const candidates = group.voters.filter((v) => v !== self && led.has(v)).sort();
    let to: NodeId | null = null;
    for (const candidate of candidates) if (to === null || count(candidate) < count(to)) to = candidate;
    if (to === null || count(to) + 1 > limit) continue;
    moves.push({ group: group.group, from: self, to });
    led.set(self, count(self) - 1);
    led.set(to, count(to) + 1);
  }
  return moves;
}
