import { RequestError } from "@nats-io/transport-node";
import { ErrorCode, isQuorateError, QuorateError, rpcSubject } from "@quorate/core";
import { KV_SERVICE, KvClient, type KvValue } from "@quorate/kv";
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
  synopsis: "get <key> | put <key> <value> | del <key> | cas <key> <expected|--absent> <value>",
  summary: "Read and write the replicated KV store. Reads are linearizable; writes are applied exactly once.",
  details: [
    "Exit codes: 0 done, 1 the key is absent or a cas condition is false, 2 an error.",
    "get prints a string value as it is, and bytes as <N bytes: hex>; --raw writes the value's bytes as they are.",
  ].join("\n"),
  options: {
    ...natsOptions,
    ...clusterOption,
    ...jsonOption,
    raw: { type: "boolean", help: "get: write the value to stdout exactly as stored, no newline", flagOnly: true },
    absent: { type: "boolean", help: "cas: swap only if the key is absent", flagOnly: true },
    "timeout-ms": {
      type: "string",
      value: "<duration>",
      help: "deadline of the call, retries included",
      default: "10s",
    },
    timeout: durationAlias("timeout-ms"),
  },
} as const satisfies CommandSpec;

function show(value: string | Uint8Array | null): { value: string | null; encoding?: "base64" } {
  if (value === null || typeof value === "string") return { value };
  return { value: Buffer.from(value).toString("base64"), encoding: "base64" };
}

/** A value as text: strings as they are, bytes marked so they cannot pass for a string. */
export function describeValue(value: KvValue): string {
  if (typeof value === "string") return value;
  return `<${value.byteLength} byte${value.byteLength === 1 ? "" : "s"}: ${Buffer.from(value).toString("hex")}>`;
}

/** Exit 0 on success, 1 when the key is absent or a cas condition is false, 2 on errors. */
export async function kvCommand(args: readonly string[], io: CommandIo): Promise<number> {
  const { values, positionals } = await parseWithSettings(args, KV_SPEC, io.env);
  const [op, key, ...rest] = positionals;
  const arity: Record<string, number> = { get: 0, put: 1, del: 0, cas: values.absent ? 1 : 2 };
  if (op === undefined || key === undefined || !(op in arity) || rest.length !== arity[op]) {
    throw new QuorateError(ErrorCode.Config, `wrong arguments for 'quorate kv'\n${usageHint(KV_SPEC)}`);
  }
  if (values.raw && (op !== "get" || values.json)) {
    throw new QuorateError(ErrorCode.Config, "--raw applies to 'quorate kv get' without --json");
  }
  const cluster = clusterName(values.cluster);
  const client = await KvClient.connect({
    nats: await natsConnectOptions(values, io.env, "quorate-kv-cli"),
    cluster,
    timeoutMs: durationMs(values["timeout-ms"], "timeout-ms", 10_000),
    failWithoutResponders: true,
  });
  const print = (result: Record<string, unknown>, text: string) =>
    io.stdout(values.json ? `${JSON.stringify(result)}\n` : text);
  try {
    switch (op) {
      case "get": {
        const value = await client.get(key);
        if (value !== null && values.raw) io.stdout(value);
        else print({ key, found: value !== null, ...show(value) }, value === null ? "" : `${describeValue(value)}\n`);
        if (value === null && !values.json) io.stderr(`key '${key}' not found\n`);
        return value === null ? Exit.No : Exit.Ok;
      }
      case "put":
        await client.put(key, rest[0] as string);
        print({ key, ok: true }, "OK\n");
        return Exit.Ok;
      case "del": {
        await client.delete(key);
        print({ key, ok: true }, "OK\n");
        return Exit.Ok;
      }
      default: {
        const expected = values.absent ? null : (rest[0] as string);
        const swapped = await client.cas(key, expected, rest[rest.length - 1] as string);
        print({ key, swapped }, swapped ? "OK\n" : "condition failed\n");
        return swapped ? Exit.Ok : Exit.No;
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
