import { type ParseArgsConfig, parseArgs } from "node:util";
import { ErrorCode, type LogLevel, QuorateError } from "@quorate/core";
import type { NatsConnectOptions } from "@quorate/transport-nats";

type Options = NonNullable<ParseArgsConfig["options"]>;

/** Options every command that talks to NATS accepts. */
export const natsOptions = {
  nats: { type: "string" },
  creds: { type: "string" },
  nkey: { type: "string" },
  token: { type: "string" },
  user: { type: "string" },
  password: { type: "string" },
  "tls-ca": { type: "string" },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
} as const satisfies Options;

/** Options every command that runs a member (of either protocol) accepts. */
export const memberOptions = {
  ...natsOptions,
  cluster: { type: "string" },
  id: { type: "string" },
  data: { type: "string" },
  "tick-ms": { type: "string" },
  "log-level": { type: "string" },
} as const satisfies Options;

/** Parsed flags: booleans for `type: "boolean"` options, strings otherwise; all optional. */
export type ParsedFlags<O extends Options> = {
  values: { [K in keyof O]?: O[K] extends { type: "boolean" } ? boolean : string };
  positionals: string[];
};

/** Strict parsing: an unknown flag or a missing value is a Config error naming it. */
export function parse<const O extends Options>(args: readonly string[], options: O, usage: string): ParsedFlags<O> {
  try {
    return parseArgs({ args: [...args], options, strict: true, allowPositionals: true }) as ParsedFlags<O>;
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    throw new QuorateError(ErrorCode.Config, `${detail}\nusage: ${usage}`);
  }
}

export function required(value: string | undefined, flag: string, usage: string): string {
  if (value === undefined || value === "") {
    throw new QuorateError(ErrorCode.Config, `--${flag} is required\nusage: ${usage}`);
  }
  return value;
}

export function positiveInt(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new QuorateError(ErrorCode.Config, `--${flag} must be a positive integer (got '${value}')`);
  }
  return n;
}

export const DEFAULT_NATS_URL = "nats://127.0.0.1:4222";

/** NATS_URL, else the local default; `--nats` accepts a comma-separated list. */
export function natsConnectOptions(
  values: { [K in keyof typeof natsOptions]?: string | undefined },
  env: Readonly<Record<string, string | undefined>>,
  name: string,
): NatsConnectOptions {
  const servers = (values.nats ?? env.NATS_URL ?? DEFAULT_NATS_URL)
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

export function clusterName(value: string | undefined, env: Readonly<Record<string, string | undefined>>): string {
  return value ?? env.QUORATE_CLUSTER ?? "quorate";
}

const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error", "silent"];

function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

/** `--log-level`, else QUORATE_LOG_LEVEL, else info. */
export function logLevel(value: string | undefined, env: Readonly<Record<string, string | undefined>>): LogLevel {
  const level = value ?? env.QUORATE_LOG_LEVEL ?? "info";
  if (!isLogLevel(level))
    throw new QuorateError(ErrorCode.Config, `--log-level must be one of ${LOG_LEVELS.join(", ")}`);
  return level;
}
