import { ErrorCode, QuorateError } from "@quorate/core";
import { KvClient } from "@quorate/kv";
import { clusterName, natsConnectOptions, natsOptions, parse, positiveInt } from "../args.js";
import { type CommandIo, Exit } from "../io.js";

const USAGE =
  "quorate kv get <key> | put <key> <value> | del <key> | cas <key> <expected|--absent> <value>  [--cluster <name>] [--nats <url>] [--json] [--timeout-ms 10000]";

function show(value: string | Uint8Array | null): { value: string | null; encoding?: "base64" } {
  if (value === null || typeof value === "string") return { value };
  return { value: Buffer.from(value).toString("base64"), encoding: "base64" };
}

/** Exit 0 on success, 1 when the key is absent or a cas condition is false, 2 on errors. */
export async function kvCommand(args: readonly string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parse(
    args,
    {
      ...natsOptions,
      cluster: { type: "string" },
      json: { type: "boolean" },
      absent: { type: "boolean" },
      "timeout-ms": { type: "string" },
    },
    USAGE,
  );
  const [op, key, ...rest] = positionals;
  const arity: Record<string, number> = { get: 0, put: 1, del: 0, cas: values.absent ? 1 : 2 };
  if (op === undefined || key === undefined || !(op in arity) || rest.length !== arity[op]) {
    throw new QuorateError(ErrorCode.Config, `wrong arguments for 'quorate kv'\nusage: ${USAGE}`);
  }
  const cluster = clusterName(values.cluster, io.env);
  const client = await KvClient.connect({
    nats: natsConnectOptions(values, io.env, "quorate-kv-cli"),
    cluster,
    timeoutMs: positiveInt(values["timeout-ms"], "timeout-ms", 10_000),
  });
  const print = (result: Record<string, unknown>, text: string) =>
    io.stdout(values.json ? `${JSON.stringify(result)}\n` : text);
  try {
    switch (op) {
      case "get": {
        const value = await client.get(key);
        print({ key, found: value !== null, ...show(value) }, value === null ? "" : `${show(value).value}\n`);
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
  } finally {
    await client.close();
  }
}
