// One member process hosting many counter groups with serveGroups, on the built packages, so
// that a test can kill it with SIGKILL. argv[2] is JSON:
// { servers, user, pass, cluster, id, members, groups, dir, tickMs }. Prints "ready" once every
// group runs, then every 250 ms "leads <JSON list of the groups it leads>"; SIGTERM stops it cleanly.
import { msgpackStateMachine, serveGroups } from "../../packages/service/dist/index.js";
import { openLmdbGroups } from "../../packages/storage/dist/index.js";
import { connectNats } from "../../packages/transport-nats/dist/index.js";
import { countersWith } from "./counters.mjs";

const config = JSON.parse(process.argv[2]);
const nats = await connectNats({ servers: config.servers, user: config.user, pass: config.pass });
const storage = await openLmdbGroups({ dir: config.dir, cluster: config.cluster, member: config.id });
const groups = await serveGroups({
  nats,
  cluster: config.cluster,
  id: config.id,
  groups: config.groups,
  tickMs: config.tickMs,
  placement: { intervalMs: 1_000 },
  group: (group) => ({
    protocol: "raft",
    members: config.members,
    storage: storage.storage(group),
    stateMachine: countersWith(msgpackStateMachine),
  }),
});
process.stdout.write("ready\n");
const leading = () => [...groups.leaders()].filter(([, leader]) => leader === config.id).map(([group]) => group);
const report = setInterval(() => process.stdout.write(`leads ${JSON.stringify(leading())}\n`), 250);
process.once("SIGTERM", async () => {
  clearInterval(report);
  await groups.stop();
  await storage.close();
  await nats.close();
  process.exit(0);
});
