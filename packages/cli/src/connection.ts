import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { ErrorCode, QuorateError } from "@quorate/core";
import type { NatsConnectOptions } from "@quorate/transport-nats";
import type { natsOptions } from "./args.js";

export const DEFAULT_NATS_URL = "nats://127.0.0.1:4222";

type NatsKey = keyof typeof natsOptions;
export type NatsValues = { [K in NatsKey]?: string | undefined };

/** The NATS CLI's context fields (natscontext) and the flags they stand for. */
const CONTEXT_FIELDS: Readonly<Record<string, Exclude<NatsKey, "context">>> = {
  url: "nats",
  creds: "creds",
  nkey: "nkey",
  token: "token",
  user: "user",
  password: "password",
  ca: "tls-ca",
  cert: "tls-cert",
  key: "tls-key",
};

/** Where the NATS CLI keeps context `name`: `$XDG_CONFIG_HOME/nats/context/<name>.json`, else under ~/.config. */
export function natsContextPath(name: string, env: Readonly<Record<string, string | undefined>>): string {
  if (!/^[A-Za-z0-9_.-]+$/.test(name) || name.startsWith(".")) {
    throw new QuorateError(ErrorCode.Config, `--context '${name}' is not a context name`);
  }
  const config =
    env.XDG_CONFIG_HOME === undefined || env.XDG_CONFIG_HOME === "" ? join(homedir(), ".config") : env.XDG_CONFIG_HOME;
  return join(config, "nats", "context", `${name}.json`);
}

/**
 * Reads a NATS CLI context file as flag values. The CLI writes every field, unset ones as "",
 * and fields Quorate has no use for (description, jetstream_domain, ...): both are ignored.
 * Paths may start with `~/`, as the CLI allows.
 */
export async function readNatsContext(
  name: string,
  env: Readonly<Record<string, string | undefined>>,
): Promise<NatsValues> {
  const path = natsContextPath(name, env);
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, "utf8"));
  } catch (err) {
    const reason =
      err instanceof Error && "code" in err ? String(err.code) : err instanceof Error ? err.message : String(err);
    throw new QuorateError(ErrorCode.Config, `cannot read NATS context '${name}' from ${path} (${reason})`, {
      cause: err,
    });
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new QuorateError(ErrorCode.Config, `NATS context file ${path} must hold a JSON object`);
  }
  const values: NatsValues = {};
  for (const [field, key] of Object.entries(CONTEXT_FIELDS)) {
    const value: unknown = (parsed as Record<string, unknown>)[field];
    if (value === undefined || value === null || value === "") continue;
    if (typeof value !== "string") {
      throw new QuorateError(ErrorCode.Config, `NATS context file ${path}: '${field}' must be a string`);
    }
    values[key] = key === "nats" ? value : expandHome(value);
  }
  return values;
}

function expandHome(path: string): string {
  return path === "~" || path.startsWith("~/") ? join(homedir(), path.slice(1)) : path;
}

/**
 * Connection options from the resolved settings (flags, then environment), with gaps filled
 * from `--context` when one is named; the servers default to the local one. `--nats` and a
 * context's url accept a comma-separated list.
 */
export async function natsConnectOptions(
  settings: NatsValues,
  env: Readonly<Record<string, string | undefined>>,
  name: string,
): Promise<NatsConnectOptions> {
  const context = settings.context === undefined ? {} : await readNatsContext(settings.context, env);
  const values: NatsValues = { ...context };
  for (const [key, value] of Object.entries(settings) as [NatsKey, string | undefined][]) {
    if (value !== undefined) values[key] = value;
  }
  const servers = (values.nats ?? DEFAULT_NATS_URL)
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  return {
    servers,
    name,
    ...(values.creds === undefined ? {} : { credsFile: values.creds }),
    ...(values.nkey === undefined ? {} : { nkeySeed: values.nkey }),
    ...(values.token === undefined ? {} : { token: values.token }),
    ...(values.user === undefined ? {} : { user: values.user }),
    ...(values.password === undefined ? {} : { pass: values.password }),
    ...(values["tls-ca"] === undefined && values["tls-cert"] === undefined
      ? {}
      : {
          tls: {
            ...(values["tls-ca"] === undefined ? {} : { caFile: values["tls-ca"] }),
            ...(values["tls-cert"] === undefined ? {} : { certFile: values["tls-cert"] }),
            ...(values["tls-key"] === undefined ? {} : { keyFile: values["tls-key"] }),
          },
        }),
  };
}

/**
 * Nothing is subscribed on a cluster's subject (NATS "no responders"): almost always a wrong
 * cluster name or server, which waiting would not fix.
 */
export function noResponders(cluster: string, subject: string): QuorateError {
  return new QuorateError(
    ErrorCode.Unreachable,
    `no member of cluster '${cluster}' answers on ${subject} (NATS: no responders). ` +
      "Check the cluster name (--cluster, QUORATE_CLUSTER) and the NATS server (--nats, NATS_URL, --context)",
  );
}
