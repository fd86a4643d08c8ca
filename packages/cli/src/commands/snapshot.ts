import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { ErrorCode, isQuorateError, QuorateError, validateMembers } from "@quorate/core";
import { decodeBackup, type RaftBackup, seedFromBackup } from "@quorate/raft";
import { openLmdbStorage } from "@quorate/storage";
import { connectNats, type NatsConnection } from "@quorate/transport-nats";
import type { HeldBackup } from "../admin.js";
import { adminRequest, findLeader } from "../admin-client.js";
import {
  type CommandSpec,
  clusterName,
  durationAlias,
  jsonOption,
  natsOptions,
  parseWithSettings,
  required,
  usageHint,
} from "../args.js";
import { natsConnectOptions } from "../connection.js";
import { durationMs } from "../duration.js";
import { type CommandIo, Exit } from "../io.js";
import { collectStatus } from "../member.js";

export const SNAPSHOT_SPEC = {
  name: "snapshot",
  synopsis: "save <file> | restore <file> --data <dir> --id <id> --peers <id,id,...>",
  summary: "Back up a Raft cluster from its leader, or seed a new member's data directory from a backup.",
  details: [
    "save     take a consistent snapshot on the leader (after a read barrier) and write it to <file>:",
    "         the state, its index and term, the configuration, and a SHA-256 checksum",
    "restore  check <file>, then seed the empty data directory --data for member --id of a new cluster",
    "         of --peers; run it once per member with the same file and peers, then start each with",
    "         quorate node and the same --id, --peers and --data. Nothing is written for a bad file.",
    "Raft only: a Paxos cluster has no leader snapshot to save.",
    "",
    "Exit status: 0 done, 2 failed (a damaged or truncated file fails with QUORATE_CORRUPT).",
  ].join("\n"),
  options: {
    ...natsOptions,
    cluster: {
      type: "string",
      value: "<name>",
      help: "cluster name",
      default: "quorate; restore: the backup's cluster",
    },
    ...jsonOption,
    data: { type: "string", value: "<dir>", help: "restore: the new member's data directory (empty or absent)" },
    id: { type: "string", value: "<id>", help: "restore: the new member's id" },
    peers: { type: "string", value: "<id,id,...>", help: "restore: the voters of the new cluster" },
    "timeout-ms": {
      type: "string",
      value: "<duration>",
      help: "save: how long to wait for each answer",
      default: "30s",
    },
    timeout: durationAlias("timeout-ms"),
  },
} as const satisfies CommandSpec;

/** `quorate snapshot save|restore`. */
export async function snapshotCommand(args: readonly string[], io: CommandIo): Promise<number> {
  const { values, positionals } = await parseWithSettings(args, SNAPSHOT_SPEC, io.env);
  const [action, file, ...rest] = positionals;
  if (file === undefined || rest.length > 0 || (action !== "save" && action !== "restore")) {
    throw new QuorateError(ErrorCode.Config, `unknown snapshot command\n${usageHint(SNAPSHOT_SPEC)}`);
  }
  if (action === "save") {
    const cluster = clusterName(values.cluster);
    const timeoutMs = durationMs(values["timeout-ms"], "timeout-ms", 30_000);
    const nc = await connectNats(await natsConnectOptions(values, io.env, "quorate-snapshot-cli"));
    try {
      const backup = await save(nc, cluster, file, timeoutMs);
      report(io, values.json === true, "saved", file, backup, backup.config.voters);
      return Exit.Ok;
    } finally {
      await nc.close();
    }
  }
  const dataDir = required(values.data, "data", SNAPSHOT_SPEC);
  const id = required(values.id, "id", SNAPSHOT_SPEC);
  const peers = required(values.peers, "peers", SNAPSHOT_SPEC)
    .split(",")
    .map((p) => p.trim());
  validateMembers(peers, id);
  const backup = decodeBackup(await readBackupFile(file), file);
  await restore(backup, values.cluster ?? backup.cluster, id, peers, dataDir);
  report(io, values.json === true, "restored", dataDir, backup, peers);
  return Exit.Ok;
}

function report(
  io: CommandIo,
  json: boolean,
  done: string,
  where: string,
  backup: RaftBackup,
  voters: readonly string[],
) {
  const { cluster, index, term, data } = backup;
  if (json) {
    io.stdout(`${JSON.stringify({ [done]: where, cluster, index, term, voters, stateBytes: data.length })}\n`);
  } else {
    io.stdout(
      `${done} ${where}: cluster ${cluster}, index ${index}, term ${term}, ${data.length} bytes of state; voters ${voters.join(", ")}\n`,
    );
  }
}

/** Asks the leader for a backup and reads it in chunks; the file appears only once it checks out. */
async function save(nc: NatsConnection, cluster: string, file: string, timeoutMs: number): Promise<RaftBackup> {
  const members = await collectStatus(nc, cluster, 1000, { failWithoutResponders: true });
  if (members.length > 0 && members.every((m) => m.protocol === "paxos")) {
    throw new QuorateError(
      ErrorCode.Config,
      `cluster '${cluster}' runs Paxos; snapshot save backs up Raft clusters only (see the README's Backup and restore)`,
    );
  }
  const { leader, held } = await takeBackup(nc, cluster, timeoutMs);
  const bytes = new Uint8Array(held.bytes);
  for (let offset = 0; offset < held.bytes; ) {
    const { chunk } = await adminRequest(nc, cluster, leader, { op: "read-backup", id: held.id, offset }, timeoutMs);
    const part = Buffer.from(chunk ?? "", "base64");
    if (part.length === 0 || offset + part.length > held.bytes) {
      throw new QuorateError(ErrorCode.Rejected, `${leader} sent a chunk that does not fit the backup at ${offset}`);
    }
    bytes.set(part, offset);
    offset += part.length;
  }
  const backup = decodeBackup(bytes, `the backup ${leader} sent`);
  // Written beside the target and renamed: a crash or a full disk leaves no partial backup under its name.
  const partial = join(dirname(resolve(file)), `.${basename(file)}.partial-${process.pid}`);
  try {
    await writeFile(partial, bytes, { flag: "wx" });
    await rename(partial, file);
  } catch (err) {
    await rm(partial, { force: true });
    throw new QuorateError(ErrorCode.Storage, `cannot write ${file}: ${(err as Error).message}`, { cause: err });
  }
  return backup;
}

/** Leadership moving between finding the leader and asking it: ask the new one, a few times. */
const SAVE_ATTEMPTS = 3;

async function takeBackup(
  nc: NatsConnection,
  cluster: string,
  timeoutMs: number,
): Promise<{ leader: string; held: HeldBackup }> {
  for (let attempt = 1; ; attempt++) {
    const leader = await findLeader(nc, cluster);
    try {
      const { backup } = await adminRequest(nc, cluster, leader, { op: "save-backup" }, timeoutMs);
      if (backup === undefined) throw new QuorateError(ErrorCode.Rejected, `${leader} did not take a backup`);
      return { leader, held: backup };
    } catch (err) {
      if (!isQuorateError(err, ErrorCode.NotLeader) || attempt >= SAVE_ATTEMPTS) throw err;
    }
  }
}

async function readBackupFile(file: string): Promise<Uint8Array> {
  try {
    return await readFile(file);
  } catch (err) {
    throw new QuorateError(ErrorCode.Config, `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Seeds `dataDir` from `backup` in a directory beside it, renamed into place once durable: a
 * failed restore leaves nothing under `dataDir`. An existing, non-empty `dataDir` is refused.
 * A mount point (a Kubernetes volume) cannot be renamed onto: it is seeded in place, and
 * emptied again if that fails.
 */
async function restore(backup: RaftBackup, cluster: string, id: string, peers: string[], dataDir: string) {
  const target = resolve(dataDir);
  const existing = await readdir(target).catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return null;
    throw new QuorateError(ErrorCode.Storage, `cannot read data directory ${dataDir}: ${err.message}`, { cause: err });
  });
  if (existing !== null && existing.length > 0) {
    throw new QuorateError(
      ErrorCode.Storage,
      `data directory ${dataDir} is not empty; restore seeds a new member and never overwrites one`,
    );
  }
  const seed = async (dir: string) => {
    const storage = await openLmdbStorage({ dir, cluster, member: id });
    try {
      await seedFromBackup(storage, backup, id, peers);
    } finally {
      await storage.close();
    }
  };
  await mkdir(dirname(target), { recursive: true });
  const staging = join(dirname(target), `.${basename(target)}.restoring-${process.pid}`);
  try {
    await seed(staging);
    // rename(2) replaces an empty directory.
    await rename(staging, target);
    return;
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    const code = (err as NodeJS.ErrnoException).code;
    if (existing === null || (code !== "EXDEV" && code !== "EBUSY")) throw err;
  }
  try {
    await seed(target);
  } catch (err) {
    for (const name of await readdir(target)) await rm(join(target, name), { recursive: true, force: true });
    throw err;
  }
}
