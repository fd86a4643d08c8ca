import { decodeFrame } from "@quorate/core";
import { encodeKvCommand, KvStateMachine } from "@quorate/kv";
import { RaftNode } from "@quorate/raft";
import { MemoryRaftStorage } from "@quorate/storage";
import { MemoryDisk } from "@quorate/storage/internal";
import { MemoryNetwork } from "@quorate/transport-memory";
import { afterEach, describe, expect, it } from "vitest";

/**
 * Frames the fuzzer found that stopped or wedged a live member, kept byte for byte. Each is a
 * well-formed frame from "fuzzer", an id that was never a member of the group.
 */

/** raft.append {term 1, prevLogIndex 0, prevLogTerm 0, leaderCommit 0, no entries, seq 0} from "fuzzer". */
const APPEND_AT_TERM_1 =
  "9601a466757a7aa26b76a666757a7a6572ab726166742e617070656e64de0006a47465726d01ac707265764c6f67496e64657800ab707265764c6f" +
  "675465726d00ac6c6561646572436f6d6d697400a7656e7472696573de0004a57465726d7390a56b696e647390a573697a657390a464617461c400a373657100";

/** raft.vote {term, lastLogIndex, lastLogTerm: 2^53-1, preVote false, transfer true} from "fuzzer". */
const VOTE_AT_MAX_TERM =
  "9601a466757a7aa26b76a666757a7a6572a9726166742e766f7465de0005a47465726dcb433fffffffffffffac6c6173744c6f67496e646578cb433f" +
  "ffffffffffffab6c6173744c6f675465726dcb433fffffffffffffa7707265566f7465c2a87472616e73666572c3";

const hex = (s: string) => new Uint8Array(Buffer.from(s, "hex"));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let nodes: RaftNode[] = [];
afterEach(() => {
  for (const node of nodes) node.kill();
  nodes = [];
});

async function startGroup(ids: string[]): Promise<MemoryNetwork> {
  const network = new MemoryNetwork({ seed: 1 });
  for (const id of ids) {
    nodes.push(
      await RaftNode.start({
        id,
        members: ids,
        transport: network.connect({ cluster: "fuzz", group: "kv", self: id }),
        storage: new MemoryRaftStorage(new MemoryDisk()),
        stateMachine: new KvStateMachine(),
        tickMs: 10,
      }),
    );
  }
  return network;
}

async function leader(): Promise<RaftNode> {
  for (let waited = 0; waited < 5000; waited += 10) {
    const found = nodes.find((n) => n.role() === "leader");
    if (found !== undefined) return found;
    await sleep(10);
  }
  throw new Error("no leader");
}

describe("fuzz regressions: a non-member's well-formed frames", () => {
  it("the codec hands the append to the member and refuses the vote's term beyond MAX_RAFT_TERM", () => {
    expect(decodeFrame(hex(APPEND_AT_TERM_1), { cluster: "fuzz", group: "kv" }).ok).toBe(true);
    expect(decodeFrame(hex(VOTE_AT_MAX_TERM), { cluster: "fuzz", group: "kv" })).toMatchObject({
      ok: false,
      reason: "invalid",
    });
  });

  it("an AppendEntries of the leader's own term does not stop the leader: it is refused and reported", async () => {
    // One voter: it leads in term 1 at once, the term the frame names.
    const network = await startGroup(["n1"]);
    const node = await leader();
    expect(node.status().term).toBe(1);
    network.injectRaw("fuzz", "kv", "fuzzer", hex(APPEND_AT_TERM_1), "n1");
    await sleep(50);
    expect(node.failure).toBeNull();
    expect(node.role()).toBe("leader");
    await node.propose(encodeKvCommand({ op: "put", key: "k", value: "v" }));
  });

  it("a non-member's vote request at term 2^53-1 moves no member's term, and the group still commits", async () => {
    const network = await startGroup(["n1", "n2", "n3"]);
    const before = (await leader()).status().term;
    network.injectRaw("fuzz", "kv", "fuzzer", hex(VOTE_AT_MAX_TERM));
    await sleep(300);
    for (const node of nodes) {
      expect(node.failure).toBeNull();
      expect(node.status().term).toBeLessThan(before + 3);
    }
    await (await leader()).propose(encodeKvCommand({ op: "put", key: "k", value: "v" }));
  });
});
