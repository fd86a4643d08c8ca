import { type ParseArgsConfig, parseArgs } from "node:util";
import { ErrorCode, type LogLevel, QuorateError } from "@quorate/core";
import { envVariable, resolveSettings, settingValues } from "./config.js";

/**
 * One table per command: the same entries parse and validate the flags, name the environment
 * variables and config-file keys, and write the usage line and `--help`, so none can drift.
 */
export interface OptionSpec {
  readonly type: "string" | "boolean";
  /** How the value is shown in usage and help: `<url>`, `<duration>`. */
  readonly value?: string;
  readonly help: string;
  /** The default as help shows it; the command applies it. */
  readonly default?: string;
  /** Shown without brackets in the usage line. */
  readonly required?: boolean;
  /** A per-invocation flag (`--json`, `--to`): never read from the environment or a config file. */
  readonly flagOnly?: boolean;
  /** Another name of that option (`--timeout` for `--timeout-ms`): its value is parsed as that option's. */
  readonly aliasOf?: string;
}

/** The NATS CLI's spelling of a `-ms` setting, `--timeout 5s` for `--timeout-ms`; the `-ms` name stays the setting. */
export function durationAlias<const K extends string>(of: K) {
  return { type: "string", value: "<duration>", help: `same as --${of}`, aliasOf: of, flagOnly: true } as const;
}

export type OptionTable = Readonly<Record<string, OptionSpec>>;

export interface CommandSpec<O extends OptionTable = OptionTable> {
  /** `kv`, `paxos acceptor|proposer|learner`. */
  readonly name: string;
  /** The positional part of the usage line: `get <key> | put <key> <value>`. */
  readonly synopsis?: string;
  readonly summary: string;
  readonly options: O;
  /** More help text: subcommands, exit codes. */
  readonly details?: string;
}

const stringOption = (help: string, value: string) => ({ type: "string", value, help }) as const;

/** Options every command that talks to NATS accepts: the NATS CLI's, and `--context` to reuse its contexts. */
export const natsOptions = {
  nats: stringOption("NATS server URL(s), comma-separated", "<url>"),
  context: stringOption("NATS CLI context to read the server, credentials and TLS files from", "<name>"),
  creds: stringOption("user credentials file (JWT + seed)", "<file>"),
  nkey: stringOption("user nkey seed, or a file holding one", "<seed|file>"),
  token: stringOption("authentication token", "<token>"),
  user: stringOption("user name", "<user>"),
  password: stringOption("password", "<password>"),
  "tls-ca": stringOption("CA certificate file to verify the server with", "<file>"),
  "tls-cert": stringOption("client certificate file", "<file>"),
  "tls-key": stringOption("client certificate's private key file", "<file>"),
} as const satisfies OptionTable;

export const DEFAULT_CLUSTER = "quorate";

export const clusterOption = {
  cluster: { type: "string", value: "<name>", help: "cluster name", default: DEFAULT_CLUSTER },
} as const satisfies OptionTable;

/** `--json`, the machine-readable output of client commands. */
export const jsonOption = {
  json: { type: "boolean", help: "print JSON instead of text", flagOnly: true },
} as const satisfies OptionTable;

/** Options every command that runs a member (of either protocol) accepts. */
export const memberOptions = {
  ...natsOptions,
  ...clusterOption,
  id: { type: "string", value: "<id>", help: "this member's id", required: true },
  data: { type: "string", value: "<dir>", help: "data directory", required: true },
  "tick-ms": { type: "string", value: "<duration>", help: "protocol tick", default: "50ms" },
  tick: durationAlias("tick-ms"),
  "log-level": { type: "string", value: "<level>", help: "debug, info, warn, error or silent", default: "info" },
} as const satisfies OptionTable;

/** Parsed flags: booleans for `type: "boolean"` options, strings otherwise; all optional. */
export type ParsedFlags<O extends OptionTable> = {
  values: { [K in keyof O]?: O[K] extends { type: "boolean" } ? boolean : string };
  positionals: string[];
};

function flagText(key: string, spec: OptionSpec): string {
  return spec.type === "boolean" ? `--${key}` : `--${key} ${spec.value ?? "<value>"}`;
}

/** `quorate <name> <synopsis> <every flag of the table>`: required ones bare, the rest in brackets. */
export function usageLine(spec: CommandSpec): string {
  const flags = Object.entries(spec.options).map(([key, o]) =>
    o.required ? flagText(key, o) : `[${flagText(key, o)}]`,
  );
  return ["quorate", spec.name, spec.synopsis, ...flags].filter((s) => s !== undefined && s !== "").join(" ");
}

/** `quorate <command> --help`: usage, summary, details, then one line per flag with its default and variable. */
export function helpText(spec: CommandSpec): string {
  const options = Object.entries(spec.options);
  const rows = options.map(([key, o]) => {
    const notes = [
      o.default === undefined ? null : `default ${o.default}`,
      o.flagOnly ? null : `env ${envVariable(key)}`,
    ].filter((n) => n !== null);
    return [flagText(key, o), notes.length === 0 ? o.help : `${o.help} (${notes.join("; ")})`] as const;
  });
  rows.push(["-h, --help", "show this help"]);
  const width = Math.max(...rows.map(([flag]) => flag.length));
  const lines = [
    `usage: ${["quorate", spec.name, spec.synopsis, "[options]"].filter((s) => s !== undefined).join(" ")}`,
    "",
    spec.summary,
    ...(spec.details === undefined ? [] : ["", spec.details]),
    "",
    "Options:",
    ...rows.map(([flag, help]) => `  ${flag.padEnd(width)}  ${help}`),
    ...(options.some(([, o]) => o.value === "<duration>")
      ? ["", "Durations are written as the NATS CLI writes them (5s, 250ms, 1m); a bare number is milliseconds."]
      : []),
    ...(options.some(([, o]) => !o.flagOnly)
      ? [
          "Each setting comes from its flag, else its environment variable" +
            ("config" in spec.options ? ", else the --config file." : "."),
          ...("context" in spec.options ? ["What the connection settings leave unset comes from --context."] : []),
        ]
      : []),
  ];
  return `${lines.join("\n")}\n`;
}

/** `--help` or `-h` before any `--`: the command prints its help instead of running. */
export function wantsHelp(args: readonly string[]): boolean {
  const end = args.indexOf("--");
  return (end === -1 ? args : args.slice(0, end)).some((a) => a === "--help" || a === "-h");
}

/** Strict parsing: an unknown flag or a missing value is a Config error naming it, with the usage line. */
export function parse<const O extends OptionTable>(args: readonly string[], spec: CommandSpec<O>): ParsedFlags<O> {
  const options: NonNullable<ParseArgsConfig["options"]> = {};
  for (const [key, o] of Object.entries(spec.options)) options[key] = { type: o.type };
  let parsed: ParsedFlags<O>;
  try {
    parsed = parseArgs({ args: [...args], options, strict: true, allowPositionals: true }) as ParsedFlags<O>;
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    throw new QuorateError(ErrorCode.Config, `${detail}\n${usageHint(spec)}`);
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  for (const [key, o] of Object.entries(spec.options)) {
    if (o.aliasOf === undefined || values[key] === undefined) continue;
    if (values[o.aliasOf] !== undefined) {
      throw new QuorateError(ErrorCode.Config, `--${key} and --${o.aliasOf} are one setting: give one of them`);
    }
    values[o.aliasOf] = values[key];
    delete values[key];
  }
  return parsed;
}

/** What a usage error ends with. */
export function usageHint(spec: CommandSpec): string {
  return `usage: ${usageLine(spec)}\n(quorate ${spec.name.split(" ")[0]} --help explains each flag)`;
}

/** The options a command reads from the environment (and, for members, a config file): all but flag-only ones. */
export type SettingKey<O extends OptionTable> = {
  [K in keyof O]: O[K] extends { flagOnly: true } ? never : K;
}[keyof O] &
  string;

export function settingKeys<O extends OptionTable>(options: O): SettingKey<O>[] {
  return Object.keys(options).filter((key) => options[key]?.flagOnly !== true) as SettingKey<O>[];
}

/**
 * Parses a client command's flags and fills each setting the flags leave unset from its
 * environment variable (QUORATE_CLUSTER, QUORATE_CREDS, NATS_URL, ...), as `quorate node` does.
 */
export async function parseWithSettings<const O extends OptionTable>(
  args: readonly string[],
  spec: CommandSpec<O>,
  env: Readonly<Record<string, string | undefined>>,
): Promise<ParsedFlags<O>> {
  const parsed = parse(args, spec);
  const keys = settingKeys(spec.options);
  const settings = settingValues(await resolveSettings(keys, parsed.values, env), keys);
  return { values: { ...parsed.values, ...settings }, positionals: parsed.positionals };
}

export function required(value: string | undefined, flag: string, spec: CommandSpec): string {
  if (value === undefined || value === "") {
    throw new QuorateError(ErrorCode.Config, `--${flag} is required\n${usageHint(spec)}`);
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

export function clusterName(value: string | undefined): string {
  return value ?? DEFAULT_CLUSTER;
}

const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error", "silent"];

function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

/** `--log-level` (or QUORATE_LOG_LEVEL, through the settings), else info. */
export function logLevel(value: string | undefined): LogLevel {
  const level = value ?? "info";
  if (!isLogLevel(level))
    throw new QuorateError(ErrorCode.Config, `--log-level must be one of ${LOG_LEVELS.join(", ")}`);
  return level;
}
