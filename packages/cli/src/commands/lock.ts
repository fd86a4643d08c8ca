import { spawn } from "node:child_process";
import { constants } from "node:os";
import { Mutex } from "@quorate/concurrency";
import { ErrorCode, QuorateError } from "@quorate/core";
import { MIN_LEASE_TTL_MS } from "@quorate/kv";
import { KvClient } from "@quorate/kv/nats";
import {
  type CommandSpec,
  clusterName,
  clusterOption,
  durationAlias,
  natsOptions,
  parseWithSettings,
  usageHint,
} from "../args.js";
import { natsConnectOptions } from "../connection.js";
import { durationMs } from "../duration.js";
import { type CommandIo, Exit } from "../io.js";

/** Options of the commands that hold a lease while they run: `lock` and `elect`. */
export const leaseOptions = {
  "ttl-ms": {
    type: "string",
    value: "<duration>",
    help: "the lease's TTL: how long the cluster keeps the lock (or leadership) of a holder that stopped",
    default: "10s",
  },
  ttl: durationAlias("ttl-ms"),
} as const;

export const LOCK_SPEC = {
  name: "lock",
  synopsis: "<name> -- <command> [args...]",
  summary: "Run a command while holding a cluster-wide lock; waits its turn, releases on exit or signal.",
  details: [
    "The command gets the lock's fencing token in QUORATE_LOCK_TOKEN: a number larger than every earlier",
    "holder's. A resource it writes can refuse any token below the highest it has seen.",
    "The lock lives by a lease the command keeps alive; if the lease is lost, the command gets SIGTERM.",
    "Exit codes: the command's own (128+N when it died of signal N), 2 when the lock could not be taken or was lost.",
  ].join("\n"),
  options: {
    ...natsOptions,
    ...clusterOption,
    ...leaseOptions,
  },
} as const satisfies CommandSpec;

/** The lease TTL from --ttl-ms: at least the state machine's minimum. */
export function leaseTtlMs(value: string | undefined): number {
  const ttlMs = durationMs(value, "ttl-ms", 10_000);
  if (ttlMs < MIN_LEASE_TTL_MS) {
    throw new QuorateError(ErrorCode.Config, `--ttl-ms must be at least ${MIN_LEASE_TTL_MS}ms (got ${ttlMs}ms)`);
  }
  return ttlMs;
}

/** A child's exit as a shell reports it: its code, or 128 + the signal's number. */
function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  return 128 + (signal === null ? 0 : (constants.signals[signal] ?? 0));
}

export async function lockCommand(args: readonly string[], io: CommandIo): Promise<number> {
  const separator = args.indexOf("--");
  const command = separator === -1 ? [] : args.slice(separator + 1);
  const { values, positionals } = await parseWithSettings(
    separator === -1 ? args : args.slice(0, separator),
    LOCK_SPEC,
    io.env,
  );
  const [name] = positionals;
  if (positionals.length !== 1 || name === undefined || command.length === 0) {
    throw new QuorateError(ErrorCode.Config, `wrong arguments for 'quorate lock'\n${usageHint(LOCK_SPEC)}`);
  }
  const ttlMs = leaseTtlMs(values["ttl-ms"]);
  const client = await KvClient.connect({
    nats: await natsConnectOptions(values, io.env, "quorate-lock-cli"),
    cluster: clusterName(values.cluster),
    failWithoutResponders: true,
  });
  try {
    const lease = await client.lease(ttlMs);
    const stop = new AbortController();
    void io.stopSignal.then(() => stop.abort(new QuorateError(ErrorCode.Closed, "stopped while waiting for the lock")));
    try {
      const held = await new Mutex(client).lock(name, { lease, signal: stop.signal });
      const child = spawn(command[0] as string, command.slice(1), {
        stdio: "inherit",
        env: { ...io.env, QUORATE_LOCK_TOKEN: String(held.token) },
      });
      /** Set when the lease was lost while the command ran: the command is stopped, and this is the error. */
      const lost: { error: QuorateError | null } = { error: null };
      void lease.done.then((error) => {
        if (error === null || child.exitCode !== null) return;
        lost.error = error;
        child.kill("SIGTERM");
      });
      void io.stopSignal.then((signal) => child.kill(signal as NodeJS.Signals));
      const exit = await new Promise<number>((resolve, reject) => {
        child.once("error", reject);
        child.once("exit", (code, signal) => resolve(exitCodeOf(code, signal)));
      });
      await held.unlock().catch(() => false);
      if (lost.error !== null) {
        io.stderr(
          `error (${lost.error.code}): the lock '${name}' was lost while the command ran: ${lost.error.message}\n`,
        );
        return Exit.Error;
      }
      return exit;
    } finally {
      await lease.revoke().catch(() => false);
    }
  } finally {
    await client.close();
  }
}
