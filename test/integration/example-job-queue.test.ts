import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packValue, rpcSubject, unpackValue } from "../../packages/core/src/index.js";
import { connectNats, type NatsConnection } from "../../packages/transport-nats/src/index.js";
import { type NatsServer, startNats } from "../harness/nats.js";

/** The built example, run as its users would: one process per instance. */
const MAIN = resolve(import.meta.dirname, "../../examples/job-queue/dist/main.js");
const CLUSTER = "job-queue-example";
const IDS = ["n1", "n2", "n3"];
const JOBS = 240;
const PRODUCERS = 4;
const CONSUMERS = 4;

interface Instance {
  readonly id: string;
  readonly process: ChildProcess;
  stderr: string;
}

type Job = { job: string; payload: string };

let server: NatsServer;
let dataDir: string;
const instances: Instance[] = [];
const connections: NatsConnection[] = [];

function start(id: string): Promise<Instance> {
  const child = spawn(process.execPath, [MAIN], {
    env: {
      ...process.env,
      NATS_URL: server.url,
      NATS_USER: server.user,
      NATS_PASS: server.pass,
      CLUSTER,
      MEMBER: id,
      MEMBERS: IDS.join(","),
      DATA_DIR: join(dataDir, id),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const instance: Instance = { id, process: child, stderr: "" };
  child.stderr?.on("data", (chunk: Buffer) => {
    instance.stderr += chunk.toString();
  });
  return new Promise((resolveReady, reject) => {
    child.once("exit", (code) => reject(new Error(`instance ${id} exited (${code}): ${instance.stderr}`)));
    child.stdout?.on("data", (chunk: Buffer) => {
      if (chunk.toString().includes('"ready"')) resolveReady(instance);
    });
  });
}

/**
 * One call to the example's service, retried with the same body until it succeeds: the
 * example's commands are idempotent by the ids in them, so a retry after a lost reply is safe.
 */
async function call<T>(nc: NatsConnection, subject: string, body: object): Promise<T> {
  const deadline = performance.now() + 60_000;
  let last = "";
  while (performance.now() < deadline) {
    try {
      const reply = (await nc.request(subject, JSON.stringify(body), { timeout: 5_000 })).json<
        T & { error?: string }
      >();
      if (reply.error === undefined) return reply;
      last = reply.error;
    } catch (err) {
      last = String(err);
    }
    await sleep(50);
  }
  throw new Error(`${subject} ${JSON.stringify(body)} kept failing: ${last}`);
}

/** The member that leads: the one a linearizable read of the replicated group is served by. */
async function leader(nc: NatsConnection): Promise<string> {
  const query = packValue({ op: "query", query: packValue("pending") });
  for (;;) {
    try {
      const reply = await nc.request(rpcSubject({ cluster: CLUSTER }, "jobs"), query, { timeout: 2_000 });
      const decoded = unpackValue(reply.data) as { ok: boolean; servedBy?: string };
      if (decoded.ok && decoded.servedBy !== undefined) return decoded.servedBy;
    } catch {
      // No leader yet.
    }
    await sleep(100);
  }
}

describe("examples/job-queue: a replicated job queue in a NATS service", () => {
  beforeAll(async () => {
    server = await startNats();
    dataDir = mkdtempSync(join(tmpdir(), "quorate-job-queue-"));
    instances.push(...(await Promise.all(IDS.map(start))));
    for (let i = 0; i < PRODUCERS + CONSUMERS + 1; i++) {
      connections.push(await connectNats({ ...server.connectOptions(), name: `job-queue-client-${i}` }));
    }
  });

  afterAll(async () => {
    for (const instance of instances) instance.process.kill("SIGKILL");
    await Promise.all(connections.map((nc) => nc.close()));
    await server?.stop();
    if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true });
  });

  it("takes every job exactly once from several clients while the leading instance is killed", async () => {
    const [observer, ...clients] = connections as [NatsConnection, ...NatsConnection[]];
    const producers = clients.slice(0, PRODUCERS);
    const consumers = clients.slice(PRODUCERS);
    const takenBy = new Map<string, Job>();
    let enqueued = 0;

    const produce = producers.map(async (nc, p) => {
      for (let n = p; n < JOBS; n += PRODUCERS) {
        await call(nc, "jobs.enqueue", { job: `job-${n}`, payload: `work ${n}` });
        enqueued++;
      }
    });
    const consume = consumers.map(async (nc, c) => {
      for (let n = 0; takenBy.size < JOBS; n++) {
        const take = `consumer-${c}-${n}`;
        const { job } = await call<{ job: Job | null }>(nc, "jobs.take", { take });
        if (job === null) await sleep(20);
        else takenBy.set(take, job);
      }
    });
    let killed: string | null = null;
    const kill = (async () => {
      while (enqueued < JOBS / 3) await sleep(10);
      killed = await leader(observer);
      const victim = instances.find((i) => i.id === killed);
      expect(victim).toBeDefined();
      victim?.process.kill("SIGKILL");
    })();

    await Promise.all([...produce, ...consume, kill]);
    const jobs = [...takenBy.values()].map((j) => j.job);
    // Every job taken, none twice (a retried take returned the job it had taken, not another).
    expect(jobs.length).toBe(JOBS);
    expect(new Set(jobs).size).toBe(JOBS);
    expect(new Set(jobs)).toEqual(new Set(Array.from({ length: JOBS }, (_, n) => `job-${n}`)));
    for (const job of takenBy.values()) expect(job.payload).toBe(`work ${job.job.slice(4)}`);
    expect((await call<{ pending: number }>(observer, "jobs.pending", {})).pending).toBe(0);
    // The jobs after the kill were served by the instances left, under a new leader.
    expect(killed).not.toBeNull();
    expect(await leader(observer)).not.toBe(killed);
  });
});
