import { describe, expect, it } from "vitest";
import { type GroupLeadership, type LeadershipMove, placeLeaders } from "../src/index.js";

const MEMBERS = ["n1", "n2", "n3"];

function groupsLedBy(leaders: readonly (string | null)[]): GroupLeadership[] {
  return leaders.map((leader, i) => ({ group: `g${i}`, leader, voters: MEMBERS }));
}

/** Applies moves to the view, as the transfers would once done. */
function apply(groups: GroupLeadership[], moves: readonly LeadershipMove[]): GroupLeadership[] {
  return groups.map((g) => {
    const move = moves.find((m) => m.group === g.group);
    return move === undefined ? g : { ...g, leader: move.to };
  });
}

function leadCounts(groups: readonly GroupLeadership[]): Record<string, number> {
  const counts: Record<string, number> = Object.fromEntries(MEMBERS.map((m) => [m, 0]));
  for (const { leader } of groups) if (leader !== null) counts[leader] = (counts[leader] ?? 0) + 1;
  return counts;
}

describe("placeLeaders", () => {
  it("moves a member's excess over ceil(groups/members), last groups first, to the members leading fewest", () => {
    const groups = groupsLedBy(["n1", "n1", "n1", "n1", "n1", "n2"]);
    expect(placeLeaders("n1", groups)).toEqual([
      { group: "g4", from: "n1", to: "n3" },
      // n2 and n3 now lead one each: the tie goes to the lowest id.
      { group: "g3", from: "n1", to: "n2" },
      { group: "g2", from: "n1", to: "n3" },
    ]);
  });

  it("moves nothing from a member within the limit, nor groups it does not lead", () => {
    const groups = groupsLedBy(["n1", "n1", "n2", "n2", "n3", "n3"]);
    for (const member of MEMBERS) expect(placeLeaders(member, groups)).toEqual([]);
    expect(placeLeaders("n2", groupsLedBy(["n1", "n1", "n1", "n1", "n1", "n1"]))).toEqual([]);
  });

  it("ends with 3 members leading 2 of 6 groups each, from any start, every member applying the rule in turn", () => {
    for (let start = 0; start < 3 ** 6; start++) {
      let groups = groupsLedBy(Array.from({ length: 6 }, (_, i) => MEMBERS[Math.floor(start / 3 ** i) % 3] ?? null));
      for (let round = 0; round < 3; round++) {
        for (const member of MEMBERS) groups = apply(groups, placeLeaders(member, groups));
      }
      expect(leadCounts(groups)).toEqual({ n1: 2, n2: 2, n3: 2 });
    }
  });

  it("counts groups without a known leader towards nobody, and gives a group only to its own voters", () => {
    const groups: GroupLeadership[] = [
      { group: "a", leader: "n1", voters: ["n1", "n2"] },
      { group: "b", leader: "n1", voters: ["n1", "n2"] },
      { group: "c", leader: null, voters: MEMBERS },
    ];
    // limit ceil(3/3) = 1: one of n1's groups goes, to n2 (n3 votes in neither).
    expect(placeLeaders("n1", groups)).toEqual([{ group: "b", from: "n1", to: "n2" }]);
  });

  it("moves nothing when no receiver has room under the limit", () => {
    // A stale view: n1 believes it leads 3 while n2 and n3 lead 2 each (limit ceil(6/3) = 2 is exceeded in total).
    const groups = groupsLedBy(["n1", "n1", "n1", "n2", "n2", "n3", "n3"].slice(0, 6));
    const seven: GroupLeadership[] = [...groups, { group: "g6", leader: "n3", voters: MEMBERS }];
    expect(placeLeaders("n1", seven)).toEqual([]);
  });
});
