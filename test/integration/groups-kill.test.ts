import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, expect, it } from "vitest";
import { isQuorateError } from "../../packages/core/src/index.js";
import { ReplicatedClient } from "../../packages/service/src/index.js";
import { connectNats, type NatsConnection } from "../../packages/transport-nats/src/index.js";
import type { CounterCommand, CounterQuery } from "../harness/counters.mjs";
import { type NatsServer, startNats } from "../harness/nats.js";

// 3 member processes × 8 Raft groups on real NATS; concurrent clients write across all groups
// while one member is killed with SIGKILL. Every group must elect among the other two, and no
// acknowledged write may be lost.

const MEMBER = resolve(import.meta.dirname, "../harness/groups-member.mjs");
const IDS = ["n1", "n2", "n3"];
const GROUPS = Array.from({ length: 8 }, (_, i) => `shard-${i}`);
const WRITERS_PER_GROUP = 4;
const cluster = "groups-kill";

interface Process {
  readonly id: string;
  readonly child: ChildProcess;
  readonly dir: string;
  stderr: string;
  /** The groups it last reported leading. */
  leads: string[];
}

let server: NatsServer;
let nc: NatsConnection;
const processes: Process[] = [];

function startMember(id: string, dir: string): Promise<Process> {
  const config = {
    ...server.connectOptions(),
    cluster,
    id,
    members: IDS,
    groups: GROUPS,
    dir,
    tickMs: 50,
  };
  const child = spawn(process.execPath, [MEMBER, JSON.stringify(config)], { stdio: ["ignore", "pipe", "pipe"] });
  const member: Process = { id, child, dir, stderr: "", leads: [] };
  child.stderr?.on("data", (chunk: Buffer) => {
    member.stderr += chunk.toString();
  });
  return new Promise((ready, fail) => {
    if (child.stdout === null) return fail(new Error("no stdout"));
    createInterface({ input: child.stdout }).on("line", (line) => {
      if (line === "ready") ready(member);
      if (line.startsWith("leads ")) member.leads = JSON.parse(line.slice("leads ".length)) as string[];
    });
    child.once("exit", (code) => fail(new Error(`member ${id} exited with ${code}: ${member.stderr}`)));
  });
}

beforeAll(async () => {
  server = await startNats();
  for (const id of IDS) processes.push(await startMember(id, await mkdtemp(join(tmpdir(), `quorate-kill-${id}-`))));
  nc = await connectNats({ ...server.connectOptions(), name: `${cluster}-clients` });
});

afterAll(async () => {
  for (const member of processes) {
    if (member.child.exitCode === null && member.child.signalCode === null) {
      const exited = new Promise((resolve) => member.child.once("exit", resolve));
      member.child.kill("SIGTERM");
      await exited;
    }
    await rm(member.dir, { recursive: true, force: true });
  }
  await nc?.close();
  await server?.stop();
});

/** One writer: increments its own counter one command at a time, recording what was acknowledged. */
interface Writer {
  readonly group: string;
  readonly key: string;
  /** The counter's value each acknowledged command returned, in order. */
  readonly acknowledged: number[];
  /** Commands sent, acknowledged or not (an unacknowledged one may still have applied). */
  sent: number;
}

it("every group elects after a member is killed, and no acknowledged write is lost", async () => {
  const clients = await Promise.all(
    GROUPS.map((group) =>
      ReplicatedClient.connect<CounterCommand, number, CounterQuery, number>({
        nats: nc,
        cluster,
        group,
        timeoutMs: 20_000,
      }),
    ),
  );
  const writers: Writer[] = GROUPS.flatMap((group) =>
    Array.from({ length: WRITERS_PER_GROUP }, (_, i) => ({ group, key: `k${i}`, acknowledged: [], sent: 0 })),
  );
  let writing = true;
  let failures = 0;
  const run = async (writer: Writer): Promise<void> => {
    const client = clients[GROUPS.indexOf(writer.group)];
    while (writing && client !== undefined) {
      writer.sent++;
      try {
        writer.acknowledged.push(await client.command({ add: writer.key, by: 1 }));
      } catch (err) {
        // Indeterminate or timed out while the group elected: the write may or may not have applied.
        if (!isQuorateError(err)) throw err;
        failures++;
      }
    }
  };
  const load = Promise.all(writers.map(run));
  let victim: Process;
  let ackedAtKill: Map<Writer, number>;
  try {
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    // The member leading most groups: its groups must elect new leaders.
    victim = [...processes].sort((a, b) => b.leads.length - a.leads.length)[0] as Process;
    expect(victim.leads.length).toBeGreaterThan(0);
    victim.child.kill("SIGKILL");
    await new Promise((resolve) => victim.child.once("exit", resolve));
    ackedAtKill = new Map(writers.map((w) => [w, w.acknowledged.length]));
    await new Promise((resolve) => setTimeout(resolve, 8_000));
  } finally {
    // However the above ends, the writers stop.
    writing = false;
    await load;
  }
  const acked = writers.reduce((sum, w) => sum + w.acknowledged.length, 0);
  console.info(`groups-kill: ${acked} writes acknowledged, ${failures} failed or uncertain, victim ${victim.id}`);

  // Every group answers a linearizable query (ReadIndex needs a leader) and writes after the kill.
  for (const writer of writers) {
    const client = clients[GROUPS.indexOf(writer.group)];
    const value = await client?.query({ get: writer.key });
    const last = writer.acknowledged.at(-1) ?? 0;
    // In order: each acknowledged command returned more than the one before (by exactly one,
    // unless a command between them was left unacknowledged, which may have applied).
    writer.acknowledged.forEach((v, i) => {
      if (i > 0) expect(v).toBeGreaterThan(writer.acknowledged[i - 1] as number);
    });
    // No acknowledged write lost; nothing applied that was never sent.
    expect(value).toBeGreaterThanOrEqual(last);
    expect(value).toBeLessThanOrEqual(writer.sent);
  }
  for (const group of GROUPS) {
    // Each group went on acknowledging writes after the kill, those the victim led included.
    const after = writers
      .filter((w) => w.group === group)
      .reduce((sum, w) => sum + w.acknowledged.length - (ackedAtKill.get(w) ?? 0), 0);
    expect(after, `writes acknowledged by ${group} after the kill`).toBeGreaterThan(0);
  }
  // The survivors now lead every group between them.
  const survivors = processes.filter((p) => p !== victim);
  await new Promise((resolve) => setTimeout(resolve, 500));
  expect(survivors.flatMap((p) => p.leads).sort()).toEqual([...GROUPS].sort());
  await Promise.all(clients.map((client) => client.close()));
});
