import { Election, type ElectionLeader } from "@quorate/concurrency";
import { ErrorCode, QuorateError } from "@quorate/core";
import { KvClient } from "@quorate/kv/nats";
import {
  type CommandSpec,
  clusterName,
  clusterOption,
  jsonOption,
  natsOptions,
  parseWithSettings,
  usageHint,
} from "../args.js";
import { natsConnectOptions } from "../connection.js";
import { type CommandIo, Exit } from "../io.js";
import { describeValue } from "./kv.js";
import { leaseOptions, leaseTtlMs } from "./lock.js";

export const ELECT_SPEC = {
  name: "elect",
  synopsis: "<name> <value> | <name> --observe",
  summary: "Campaign in a leader election and print when this process leads; or print each change of leader.",
  details: [
    "A candidate waits its turn, prints when it leads, and leads until Ctrl-C (then it resigns) or until its",
    "lease is lost (exit 2). --observe prints the leader now and at each change, until Ctrl-C.",
  ].join("\n"),
  options: {
    ...natsOptions,
    ...clusterOption,
    ...jsonOption,
    ...leaseOptions,
    observe: { type: "boolean", help: "print the leader and each change instead of campaigning", flagOnly: true },
  },
} as const satisfies CommandSpec;

export async function electCommand(args: readonly string[], io: CommandIo): Promise<number> {
  const { values, positionals } = await parseWithSettings(args, ELECT_SPEC, io.env);
  const [name, value] = positionals;
  if (name === undefined || positionals.length !== (values.observe ? 1 : 2)) {
    throw new QuorateError(ErrorCode.Config, `wrong arguments for 'quorate elect'\n${usageHint(ELECT_SPEC)}`);
  }
  const ttlMs = leaseTtlMs(values["ttl-ms"]);
  const client = await KvClient.connect({
    nats: await natsConnectOptions(values, io.env, "quorate-elect-cli"),
    cluster: clusterName(values.cluster),
    failWithoutResponders: true,
  });
  const election = new Election(client, name);
  const print = (json: Record<string, unknown>, text: string) =>
    io.stdout(values.json ? `${JSON.stringify(json)}\n` : text);
  try {
    if (values.observe) {
      const changes = election.observe();
      void io.stopSignal.then(() => changes.return());
      for await (const leader of changes) {
        print(shown(name, leader), leader === null ? "no leader\n" : `${describeValue(leader.value)}\n`);
      }
      return Exit.Ok;
    }
    const lease = await client.lease(ttlMs);
    const stop = new AbortController();
    void io.stopSignal.then(() => stop.abort(new QuorateError(ErrorCode.Closed, "stopped while campaigning")));
    try {
      await election.campaign(value as string, { lease, signal: stop.signal });
      const leader = await election.leader();
      print({ ...shown(name, leader), leading: true }, `leading ${name} as ${value}\n`);
      const outcome = await Promise.race([io.stopSignal.then(() => null), lease.done]);
      if (outcome !== null) {
        io.stderr(`error (${outcome.code}): leadership of '${name}' was lost: ${outcome.message}\n`);
        return Exit.Error;
      }
      await election.resign();
      return Exit.Ok;
    } finally {
      await lease.revoke().catch(() => false);
    }
  } finally {
    await client.close();
  }
}

function shown(name: string, leader: ElectionLeader | null): Record<string, unknown> {
  if (leader === null) return { election: name, leader: null };
  const value = typeof leader.value === "string" ? leader.value : Buffer.from(leader.value).toString("base64");
  return { election: name, leader: value, key: leader.key, revision: leader.revision };
}
