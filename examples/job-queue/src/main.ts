import { connect, type Msg } from "@nats-io/transport-node";
import { ReplicatedClient, serveReplicated } from "@quorate/service";
import { openLmdbStorage } from "@quorate/storage";
import { type JobCommand, type JobResult, jobQueue } from "./queue.js";

/**
 * A NATS service with two endpoints, `jobs.enqueue` and `jobs.take` (JSON in, JSON out), whose
 * queue is replicated across its instances: each instance is one member of the consensus group.
 * Configured by the environment (see the README).
 */
const { NATS_URL = "nats://127.0.0.1:4222", NATS_USER, NATS_PASS, CLUSTER: cluster = "demo" } = process.env;
const { MEMBER: member = "n1", MEMBERS = "n1,n2,n3", DATA_DIR = `data-${member}` } = process.env;
const nc = await connect({ servers: NATS_URL, user: NATS_USER, pass: NATS_PASS, name: `jobs-${member}` });

// The consensus member: on the service's own connection, its log in LMDB.
const storage = await openLmdbStorage({ dir: DATA_DIR, cluster, member });
const replica = await serveReplicated({
  protocol: "raft",
  nats: nc,
  cluster,
  group: "jobs",
  id: member,
  members: MEMBERS.split(","),
  storage,
  stateMachine: jobQueue(),
});
const queue = await ReplicatedClient.connect<JobCommand, JobResult, "pending", number>({
  nats: nc,
  cluster,
  group: "jobs",
});

async function handle(msg: Msg): Promise<unknown> {
  const body = msg.json<{ job?: string; payload?: string; take?: string }>();
  switch (msg.subject) {
    case "jobs.enqueue":
      return { added: await queue.command({ enqueue: body.payload ?? "", job: body.job ?? "" }) };
    case "jobs.take":
      return { job: await queue.command({ take: body.take ?? "" }) };
    default:
      return { pending: await queue.query("pending") };
  }
}

// The application's endpoints: any instance answers, one per request.
nc.subscribe("jobs.*", {
  queue: "jobs-api",
  callback: (_err, msg) => {
    handle(msg).then(
      (reply) => msg.respond(JSON.stringify(reply)),
      (err: { code?: string; message?: string }) =>
        msg.respond(JSON.stringify({ error: err.code, message: err.message })),
    );
  },
});
console.log(JSON.stringify({ ready: member }));

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, async () => {
    await queue.close();
    await replica.stop();
    await storage.close();
    await nc.drain();
  });
}
