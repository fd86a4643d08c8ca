import { ErrorCode, QuorateError } from "@quorate/core";
import { KvClient, type KvEntry, type KvEvent, type KvValue, type KvWatchTarget } from "@quorate/kv";
import { clusterName, natsConnectOptions, natsOptions, parse, positiveInt } from "../args.js";
import { type CommandIo, Exit } from "../io.js";

const USAGE =
  "quorate kv get <key> | put <key> [<value>, else stdin] | del <key> | cas <key> <expected|--absent> <value> | ls <prefix> | watch <key> | watch --prefix <p> [--from-revision <r>]  [--cluster <name>] [--nats <url>] [--json] [--timeout-ms 10000]";

/** How many keys `ls` asks for per page; it pages on until the last. */
const LS_PAGE = 500;

function show(value: KvValue | null): { value: string | null; encoding?: "base64" } {
  if (value === null || typeof value === "string") return { value };
  return { value: Buffer.from(value).toString("base64"), encoding: "base64" };
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
  const { values, positionals } = parse(
    args,
    {
      ...natsOptions,
      cluster: { type: "string" },
      json: { type: "boolean" },
      absent: { type: "boolean" },
      prefix: { type: "string" },
      "from-revision": { type: "string" },
      "timeout-ms": { type: "string" },
    },
    USAGE,
  );
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
  if (wrong) throw new QuorateError(ErrorCode.Config, `wrong arguments for 'quorate kv'\nusage: ${USAGE}`);
  const fromRevision = revisionFlag(values["from-revision"]);
  const cluster = clusterName(values.cluster, io.env);
  const client = await KvClient.connect({
    nats: natsConnectOptions(values, io.env, "quorate-kv-cli"),
    cluster,
    timeoutMs: positiveInt(values["timeout-ms"], "timeout-ms", 10_000),
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
        print({ found: true, ...shownEntry(theKey, entry) }, `${show(entry.value).value}\n`);
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
              ? `${event.revision} put ${event.key} ${show(event.value).value}\n`
              : `${event.revision} delete ${event.key}\n`;
          print(shownEvent(event), text);
        }
        return Exit.Ok;
      }
    }
  } finally {
    await client.close();
  }
}
