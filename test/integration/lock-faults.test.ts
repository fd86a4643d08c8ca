import { type ChildProcess, spawn } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI } from "../harness/members.js";
import { bothProtocols, type ProcessCluster, startProcessCluster } from "../harness/process-cluster.js";

/**
 * Mutual exclusion under faults, with processes as users run them: `quorate lock` processes
 * contend for one lock, each running a command that uses a resource guarded by fencing tokens,
 * while the holder's lock process is kill -9ed (its command lives on, its lease expires, the
 * next contender takes over), the member that leads is killed, and NATS restarts. The resource
 * (a small HTTP ledger in this process) refuses a token below the highest it accepted; the
 * ledger then proves that holds ended normally never overlapped, that tokens strictly increased
 * from hold to hold, and that every write of a holder that had lost the lock was refused once a
 * later holder had written.
 */

const LOCK = "fenced";
const TTL_MS = 2_000;
const CONTENDERS = 4;
/** A hold: enter, write, leave, a pause between each, so holds are long enough to be cut. */
const COMMAND = `
const [, who] = process.argv;
const token = process.env.QUORATE_LOCK_TOKEN;
const post = (phase) => fetch(process.env.LEDGER + "/" + phase + "?token=" + token + "&who=" + who, { method: "POST" });
const pause = () => new Promise((r) => setTimeout(r, 150));
(async () => { await post("enter"); await pause(); await post("write"); await pause(); await post("leave"); })();
`;

interface LedgerEvent {
  readonly phase: "enter" | "write" | "leave";
  readonly token: number;
  readonly who: string;
  readonly accepted: boolean;
}

/** The fenced resource: accepts a request only with a token at least the highest it accepted. */
class FencedLedger {
  readonly events: LedgerEvent[] = [];
  #highest = 0;
  #server: Server | null = null;

  async start(): Promise<string> {
    this.#server = createServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://ledger");
      const token = Number(url.searchParams.get("token"));
      const accepted = Number.isSafeInteger(token) && token >= this.#highest;
      if (accepted) this.#highest = token;
      const phase = url.pathname.slice(1) as LedgerEvent["phase"];
      this.events.push({ phase, token, who: url.searchParams.get("who") ?? "", accepted });
      res.writeHead(accepted ? 200 : 409).end();
    });
    await new Promise<void>((r) => this.#server?.listen(0, "127.0.0.1", r));
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    return new Promise((r) => (this.#server === null ? r() : this.#server.close(() => r())));
  }
}

interface Contender {
  readonly who: string;
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  killed: boolean;
}

describe.each(bothProtocols("itfence"))("a lock under faults on $name over real NATS", (protocol) => {
  let cluster: ProcessCluster;
  const ledger = new FencedLedger();
  let ledgerUrl: string;

  beforeAll(async () => {
    cluster = await startProcessCluster(protocol, "lock-faults-test");
    ledgerUrl = await ledger.start();
  });

  afterAll(async () => {
    await cluster?.stop();
    await ledger.close();
  });

  it("holds never overlap and tokens strictly increase through kill -9 of the holder and the leader, and a NATS restart", async () => {
    const { nats, members } = cluster;
    const auth = ["--cluster", protocol.cluster, "--nats", nats.url, "--user", nats.user, "--password", nats.pass];
    const runs: Contender[] = [];
    let contending = true;
    let runNumber = 0;
    const contend = (slot: number): void => {
      if (!contending) return;
      const who = `c${slot}-${++runNumber}`;
      const args = [CLI, "lock", LOCK, "--ttl-ms", String(TTL_MS), ...auth, "--", process.execPath, "-e", COMMAND, who];
      const child = spawn(process.execPath, args, { stdio: "ignore", env: { ...process.env, LEDGER: ledgerUrl } });
      const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
      runs.push({ who, child, exited, killed: false });
      void exited.then(() => setTimeout(() => contend(slot), 50));
    };
    for (let slot = 0; slot < CONTENDERS; slot++) contend(slot);
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const holdsSoFar = () => ledger.events.filter((e) => e.phase === "leave" && e.accepted).length;
    const waitForHolds = async (more: number, what: string) => {
      const target = holdsSoFar() + more;
      const deadline = Date.now() + 60_000;
      while (holdsSoFar() < target) {
        if (Date.now() > deadline) throw new Error(`no ${more} more holds completed ${what}`);
        await sleep(100);
      }
    };

    await waitForHolds(3, "before the faults");
    // kill -9 of the lock process that holds now: its command goes on, unaware.
    const entered = ledger.events.filter((e) => e.phase === "enter" && e.accepted).at(-1);
    const holder = runs.find((r) => r.who === entered?.who);
    expect(holder).toBeDefined();
    if (holder !== undefined) {
      holder.killed = true;
      holder.child.kill("SIGKILL");
    }
    await waitForHolds(3, "after the holder was killed");

    // The member that leads dies and comes back.
    const statuses = await cluster.ready();
    const leader = members.find((m) => m.id === protocol.leaderOf(statuses));
    expect(leader).toBeDefined();
    await leader?.kill();
    await waitForHolds(2, "after the leader was killed");
    leader?.start();
    await cluster.ready();

    await nats.restart();
    await waitForHolds(3, "after NATS restarted");
    contending = false;
    await Promise.all(runs.map((r) => r.exited));
    // The orphaned command of the killed holder has had time to try its writes.
    await sleep(1_000);

    const holds = new Map<string, { token: number; events: LedgerEvent[]; code: number | null; killed: boolean }>();
    for (const run of runs) holds.set(run.who, { token: 0, events: [], code: null, killed: run.killed });
    for (const run of runs) {
      const hold = holds.get(run.who);
      if (hold !== undefined) hold.code = await run.exited;
    }
    const order: string[] = [];
    for (const event of ledger.events) {
      const hold = holds.get(event.who);
      if (hold === undefined) throw new Error(`an event from no contender: ${JSON.stringify(event)}`);
      if (hold.events.length === 0) order.push(event.who);
      hold.token = event.token;
      hold.events.push(event);
    }
    // Tokens strictly increase from hold to hold, in the order holds began.
    const tokens = order.map((who) => holds.get(who)?.token ?? 0);
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1] as number);
    // A hold whose lock process ended normally (exit 0) had the lock throughout: no event of
    // any other hold falls between its enter and its leave.
    for (const [who, hold] of holds) {
      if (hold.code !== 0 || hold.events.length === 0) continue;
      expect(hold.events.map((e) => [e.phase, e.accepted])).toEqual([
        ["enter", true],
        ["write", true],
        ["leave", true],
      ]);
      const first = ledger.events.indexOf(hold.events[0] as LedgerEvent);
      const last = ledger.events.indexOf(hold.events[2] as LedgerEvent);
      const between = ledger.events.slice(first, last + 1).filter((e) => e.who !== who);
      expect(between, `events inside ${who}'s hold`).toEqual([]);
    }
    // A hold that lost the lock (its process killed, or its lease lost): once a later holder
    // wrote, none of its writes was accepted.
    for (const [who, hold] of holds) {
      if (hold.code === 0) continue;
      for (const event of hold.events) {
        const at = ledger.events.indexOf(event);
        const laterHolderWrote = ledger.events.slice(0, at).some((e) => e.accepted && e.token > hold.token);
        if (laterHolderWrote) expect(event.accepted, `${who}'s ${event.phase} after a later holder`).toBe(false);
      }
    }
    const killed = [...holds.values()].find((h) => h.killed);
    expect(killed?.events.some((e) => e.phase === "enter" && e.accepted)).toBe(true);
    expect(holdsSoFar()).toBeGreaterThanOrEqual(11);
  });
});
