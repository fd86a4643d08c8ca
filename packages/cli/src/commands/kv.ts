import { RequestError } from "@nats-io/transport-node";
import { ErrorCode, isQuorateError, QuorateError, rpcSubject } from "@quorate/core";
import type { KvEntry, KvEvent, KvValue } from "@quorate/kv";
import { KV_SERVICE, KvClient, type KvWatchTarget } from "@quorate/kv/nats";
import {
  type CommandSpec,
  clusterName,
  clusterOption,
  durationAlias,
  jsonOption,
  natsOptions,
  parseWithSettings,
  usageHint,
} from "../args.js";
import { natsConnectOptions, noResponders } from "../connection.js";
import { durationMs } from "../duration.js";
import { type CommandIo, Exit } from "../io.js";

export const KV_SPEC = {
  name: "kv",
  synopsis:
    "get <key> | put <key> [<value>, else stdin] | del <key> | cas <key> <expected|--absent> <value> | ls <prefix> | watch <key> | watch --prefix <p> [--from-revision <r>]",
  summary: "Read, write and watch the replicated KV store. Reads are linearizable; writes are applied exactly once.",
  details: [
    "Exit codes: 0 done, 1 the key is absent, a cas condition is false or a del deleted nothing, 2 an error.",
    "get prints a string value as it is, and bytes as <N bytes: hex>; --raw writes the value's bytes as they are.",
    "get --json shows the key's revision, create revision and version; watch streams until Ctrl-C.",
  ].join("\n"),
  options: {
    ...natsOptions,
    ...clusterOption,
    ...jsonOption,
    raw: { type: "boolean", help: "get: write the value to stdout exactly as stored, no newline", flagOnly: true },
    absent: { type: "boolean", help: "cas: swap only if the key is absent", flagOnly: true },
    prefix: { type: "string", value: "<prefix>", help: "watch: every key under this prefix", flagOnly: true },
    "from-revision": {
      type: "string",
      value: "<revision>",
      help: "watch: replay the changes from this revision on (else only those after the call)",
      flagOnly: true,
    },
    "timeout-ms": {
      type: "string",
      value: "<duration>",
      help: "deadline of the call, retries included",
      default: "10s",
    },
    timeout: durationAlias("timeout-ms"),
  },
} as const satisfies CommandSpec;

/** Entries per `ls` page: one linearizable range read each. */
const LS_PAGE = 500;

function show(value: KvValue | null): { value: string | null; encoding?: "base64" } {
  if (value === null || typeof value === "string") return { value };
  return { value: Buffer.from(value).toString("base64"), encoding: "base64" };
}

/** A value as text: strings as they are, bytes marked so they cannot pass for a string. */
export function describeValue(value: KvValue): string {
  if (typeof value === "string") return value;
  return `<${value.byteLength} byte${value.byteLength === 1 ? "" : "s"}: ${Buffer.from(value).toString("hex")}>`;
}

/** What `--json` prints of a stored entry. */
function shownEntry(key: string, entry: KvEntry): Record<string, unknown> {
  return {
    key,
    ...show(entry.value),
    revision: entry.revision,
    createRevision: entry.createRevision,
    version: entry.version,
  };
}

function shownEvent(event: KvEvent): Record<string, unknown> {
  return { op: event.op, key: event.key, ...show(event.value), revision: event.revision };
}

/** A value piped in: a string when it is UTF-8, bytes otherwise; exactly as read (a trailing newline stays). */
async function readStdin(): Promise<KvValue> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const bytes = Buffer.concat(chunks);
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return new Uint8Array(bytes);
  }
}

function revisionFlag(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new QuorateError(ErrorCode.Config, `--from-revision must be a non-negative integer (got '${value}')`);
  }
  return n;
}

/**
 * Exit 0 on success, 1 when the key is absent, a cas condition is false or a del deleted
 * nothing, 2 on errors. `watch` streams until SIGINT/SIGTERM, then exits 0.
 */
export async function kvCommand(args: readonly string[], io: CommandIo): Promise<number> {
  const { values, positionals } = await parseWithSettings(args, KV_SPEC, io.env);
  const [op, key, ...rest] = positionals;
  const watchesPrefix = op === "watch" && values.prefix !== undefined;
  // Arguments after the key, by op; put takes its value from stdin when it has none.
  const arity: Record<string, number[]> = {
    get: [0],
    put: [0, 1],
    del: [0],
    cas: [values.absent ? 1 : 2],
    ls: [0],
    watch: [0],
  };
  const wrong =
    op === undefined ||
    !(op in arity) ||
    (watchesPrefix ? key !== undefined : key === undefined || !arity[op]?.includes(rest.length));
  if (wrong) throw new QuorateError(ErrorCode.Config, `wrong arguments for 'quorate kv'\n${usageHint(KV_SPEC)}`);
  if (values.raw && (op !== "get" || values.json)) {
    throw new QuorateError(ErrorCode.Config, "--raw applies to 'quorate kv get' without --json");
  }
  const fromRevision = revisionFlag(values["from-revision"]);
  const cluster = clusterName(values.cluster);
  const client = await KvClient.connect({
    nats: await natsConnectOptions(values, io.env, "quorate-kv-cli"),
    cluster,
    timeoutMs: durationMs(values["timeout-ms"], "timeout-ms", 10_000),
    failWithoutResponders: true,
  });
  const print = (result: Record<string, unknown>, text: string) =>
    io.stdout(values.json ? `${JSON.stringify(result)}\n` : text);
  const theKey = key as string;
  try {
    switch (op) {
      case "get": {
        const entry = await client.entry(theKey);
        if (entry === null) {
          print({ key, found: false, value: null }, "");
          if (!values.json) io.stderr(`key '${key}' not found\n`);
          return Exit.No;
        }
        if (values.raw) io.stdout(entry.value);
        else print({ found: true, ...shownEntry(theKey, entry) }, `${describeValue(entry.value)}\n`);
        return Exit.Ok;
      }
      case "put": {
        const value = rest[0] ?? (await readStdin());
        const revision = await client.put(theKey, value);
        print({ key, ok: true, revision }, "OK\n");
        return Exit.Ok;
      }
      case "del": {
        const deleted = await client.delete(theKey);
        print({ key, deleted }, deleted ? "OK\n" : "not found\n");
        return deleted ? Exit.Ok : Exit.No;
      }
      case "cas": {
        const expected = values.absent ? null : (rest[0] as string);
        const swapped = await client.cas(theKey, expected, rest[rest.length - 1] as string);
        print({ key, swapped }, swapped ? "OK\n" : "condition failed\n");
        return swapped ? Exit.Ok : Exit.No;
      }
      case "ls": {
        let fromKey: string | undefined;
        do {
          const page = await client.list(theKey, { limit: LS_PAGE, ...(fromKey === undefined ? {} : { fromKey }) });
          for (const entry of page.items) print(shownEntry(entry.key, entry), `${entry.key}\n`);
          fromKey = page.next ?? undefined;
        } while (fromKey !== undefined);
        return Exit.Ok;
      }
      default: {
        const target: KvWatchTarget = watchesPrefix ? { prefix: values.prefix as string } : { key: theKey };
        const watch = client.watch(target, fromRevision === undefined ? {} : { fromRevision });
        void io.stopSignal.then(() => watch.return());
        for await (const event of watch) {
          const text =
            event.op === "put"
              ? `${event.revision} put ${event.key} ${describeValue(event.value as KvValue)}\n`
              : `${event.revision} delete ${event.key}\n`;
          print(shownEvent(event), text);
        }
        return Exit.Ok;
      }
    }
  } catch (err) {
    const cause = isQuorateError(err, ErrorCode.Unreachable) ? err.cause : undefined;
    if (cause instanceof RequestError && cause.isNoResponders()) {
      throw noResponders(cluster, rpcSubject({ cluster }, KV_SERVICE));
    }
    throw err;
  } finally {
    await client.close();
  }
}
