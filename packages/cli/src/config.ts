import { readFile } from "node:fs/promises";
import { ErrorCode, QuorateError } from "@quorate/core";
import { parseDurationMs } from "./duration.js";

/**
 * Settings of a long-running command (`quorate node`, `quorate paxos <role>`) come from three
 * places, highest precedence first:
 *
 *   1. flags:       --health-port 8080
 *   2. environment: QUORATE_HEALTH_PORT=8080 (QUORATE_ + the flag in upper snake case; the
 *                   NATS servers come from NATS_URL, as for every NATS tool)
 *   3. a JSON file: --config quorate.json (or QUORATE_CONFIG) holding { "health-port": 8080 }
 *
 * One vocabulary everywhere: a file key is the flag's name, so docs and errors name one thing.
 * A file may only hold keys the command knows: a misspelt key is an error, not a silent default.
 */

export type SettingSource = "flag" | "environment" | "config file";

/** Environment variable of a setting: `health-port` → `QUORATE_HEALTH_PORT`; `nats` → `NATS_URL`. */
export function envVariable(key: string): string {
  if (key === "nats") return "NATS_URL";
  return `QUORATE_${key.toUpperCase().replace(/-/g, "_")}`;
}

/** The flag that names the config file; it is never itself read from a file. */
export const CONFIG_KEY = "config";

export interface Settings<K extends string> {
  /** The winning value, or undefined when no source sets it. Lists are comma-separated. */
  get(key: K): string | undefined;
  /** Where the winning value came from, for error messages. */
  source(key: K): SettingSource | undefined;
  /** Keys set by a flag or the file (not the environment, which is shared with other tools). */
  explicit(key: K): boolean;
  /** The config file that was read, if any. */
  readonly file: string | undefined;
}

/**
 * Merges flags, environment and an optional config file for the given keys. `flags` are the
 * parsed command-line values: strings, or true for a boolean flag that is present.
 */
export async function resolveSettings<K extends string>(
  keys: readonly K[],
  flags: Readonly<Partial<Record<string, string | boolean | undefined>>>,
  env: Readonly<Record<string, string | undefined>>,
): Promise<Settings<K>> {
  const known = new Set<string>(keys);
  const fromEnv = (key: string): string | undefined => nonEmpty(env[envVariable(key)]);
  const fromFlag = (key: string): string | undefined => {
    const value = flags[key];
    // A boolean flag is only ever present as true; false is its absence.
    return typeof value === "string" ? value : value === true ? "true" : undefined;
  };
  // Only commands that take --config read one: a client must not choke on a member's QUORATE_CONFIG.
  const path = known.has(CONFIG_KEY) ? (fromFlag(CONFIG_KEY) ?? fromEnv(CONFIG_KEY)) : undefined;
  const file = path === undefined ? new Map<string, string>() : await readConfigFile(path, known);
  const pick = (key: string): [string, SettingSource] | undefined => {
    const flag = fromFlag(key);
    if (flag !== undefined) return [flag, "flag"];
    const variable = fromEnv(key);
    if (variable !== undefined) return [variable, "environment"];
    const fileValue = file.get(key);
    if (fileValue !== undefined) return [fileValue, "config file"];
    return undefined;
  };
  return {
    file: path,
    get: (key) => pick(key)?.[0],
    source: (key) => pick(key)?.[1],
    explicit: (key) => fromFlag(key) !== undefined || file.has(key),
  };
}

function nonEmpty(value: string | undefined): string | undefined {
  // Orchestrators often set a variable to "" to mean "unset".
  return value === undefined || value.trim() === "" ? undefined : value;
}

/** Reads a JSON object of settings; values may be strings, numbers, booleans or lists of strings. */
export async function readConfigFile(path: string, known: ReadonlySet<string>): Promise<Map<string, string>> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    const reason = err instanceof Error && "code" in err ? String(err.code) : String(err);
    throw new QuorateError(ErrorCode.Config, `cannot read config file ${path} (${reason})`, { cause: err });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    throw new QuorateError(ErrorCode.Config, `config file ${path} is not valid JSON: ${detail}`, { cause: err });
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new QuorateError(ErrorCode.Config, `config file ${path} must hold a JSON object of settings`);
  }
  const settings = new Map<string, string>();
  const unknown: string[] = [];
  for (const [key, value] of Object.entries(parsed)) {
    if (key === CONFIG_KEY || !known.has(key)) {
      unknown.push(key);
      continue;
    }
    settings.set(key, settingText(path, key, value));
  }
  if (unknown.length > 0) {
    const list = unknown.map((k) => `'${k}'`).join(", ");
    const allowed = [...known].filter((k) => k !== CONFIG_KEY).join(", ");
    throw new QuorateError(
      ErrorCode.Config,
      `config file ${path} has unknown key${unknown.length > 1 ? "s" : ""} ${list}; known keys: ${allowed}`,
    );
  }
  return settings;
}

function settingText(path: string, key: string, value: unknown): string {
  if (typeof value === "string") return value;
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  if (typeof value === "boolean") return String(value);
  if (Array.isArray(value) && value.every((v): v is string => typeof v === "string")) {
    if (value.some((v) => v.includes(","))) {
      throw new QuorateError(ErrorCode.Config, `config file ${path}: the entries of '${key}' cannot contain commas`);
    }
    return value.join(",");
  }
  throw new QuorateError(
    ErrorCode.Config,
    `config file ${path}: '${key}' must be a string, a number, a boolean or a list of strings (got ${JSON.stringify(value)})`,
  );
}

/** A yes/no setting: true/false (also 1/0, yes/no) from a flag, the environment or the file. */
export function booleanSetting<K extends string>(settings: Settings<K>, key: K): boolean {
  const value = settings.get(key)?.trim().toLowerCase();
  if (value === undefined || value === "false" || value === "0" || value === "no") return false;
  if (value === "true" || value === "1" || value === "yes") return true;
  throw new QuorateError(ErrorCode.Config, `${describeSetting(settings, key)} must be true or false (got '${value}')`);
}

/** How a setting is named in errors: the flag and, when it came from elsewhere, where. */
export function describeSetting<K extends string>(settings: Settings<K>, key: K): string {
  const source = settings.source(key);
  if (source === "environment") return `${envVariable(key)} (--${key})`;
  if (source === "config file") return `'${key}' in ${settings.file ?? "the config file"}`;
  return `--${key}`;
}

/** A port number: 0 (any free port) to 65535. */
export function portSetting<K extends string>(settings: Settings<K>, key: K): number | undefined {
  const value = settings.get(key);
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === "" || !Number.isSafeInteger(n) || n < 0 || n > 65_535) {
    throw new QuorateError(
      ErrorCode.Config,
      `${describeSetting(settings, key)} must be a port number from 0 to 65535 (got '${value}')`,
    );
  }
  return n;
}

/** A duration in milliseconds, 0 or more: `5s`, `250ms`, `1m`, or a bare number of milliseconds. */
export function millisecondsSetting<K extends string>(settings: Settings<K>, key: K): number | undefined {
  const value = settings.get(key);
  if (value === undefined) return undefined;
  const ms = parseDurationMs(value);
  if (ms === null) {
    throw new QuorateError(
      ErrorCode.Config,
      `${describeSetting(settings, key)} must be a duration such as 5s, 250ms or 1m, or a whole number of milliseconds, 0 or more (got '${value}')`,
    );
  }
  return ms;
}

/** Rejects keys that the chosen mode does not use when a flag or the file sets them. */
export function rejectInapplicable<K extends string>(settings: Settings<K>, keys: readonly K[], why: string): void {
  for (const key of keys) {
    if (settings.explicit(key)) {
      throw new QuorateError(ErrorCode.Config, `${describeSetting(settings, key)} ${why}`);
    }
  }
}

function positiveMilliseconds<K extends string>(settings: Settings<K>, key: K): number | null {
  const ms = millisecondsSetting(settings, key);
  if (ms === 0) throw new QuorateError(ErrorCode.Config, `${describeSetting(settings, key)} must be above 0`);
  return ms ?? null;
}

/** Options of every long-running member command, besides its protocol's own. */
export const serviceOptions = {
  config: { type: "string", value: "<file.json>", help: "JSON file of settings, keyed by flag name" },
  "health-port": { type: "string", value: "<port>", help: "serve /livez and /readyz on this port", default: "none" },
  "health-host": { type: "string", value: "<host>", help: "address of the health server", default: "0.0.0.0" },
  "nats-wait-ms": {
    type: "string",
    value: "<duration>",
    help: "how long to wait for NATS at start; 0 fails at once",
    default: "unbounded",
  },
  "nats-ping-ms": {
    type: "string",
    value: "<duration>",
    help: "NATS PING interval; a dead connection is noticed after two unanswered",
    default: "10s",
  },
  // The NATS CLI's spelling (see durationAlias in args.ts, which imports this file).
  "nats-wait": {
    type: "string",
    value: "<duration>",
    help: "same as --nats-wait-ms",
    aliasOf: "nats-wait-ms",
    flagOnly: true,
  },
  "nats-ping": {
    type: "string",
    value: "<duration>",
    help: "same as --nats-ping-ms",
    aliasOf: "nats-ping-ms",
    flagOnly: true,
  },
} as const;

/** The settings of serviceOptions: every key but the NATS CLI spellings, which are flags only. */
export type ServiceKey = Exclude<keyof typeof serviceOptions, "nats-wait" | "nats-ping">;

/** The settings as plain values, for the helpers that take parsed flags. */
export function settingValues<K extends string>(settings: Settings<K>, keys: readonly K[]): { [P in K]?: string } {
  const values: { [P in K]?: string } = {};
  for (const key of keys) {
    const value = settings.get(key);
    if (value !== undefined) values[key] = value;
  }
  return values;
}

export interface ServiceSettings {
  /** null: wait for NATS until it answers; 0: fail at once when it does not. */
  natsWaitMs: number | null;
  /** null: no health server. */
  health: { port: number; host: string } | null;
  /** NATS client PING interval; a dead connection is noticed after two unanswered. null: the default (10 s). */
  natsPingMs: number | null;
}

/**
 * `--nats-wait-ms` (default: unbounded, so a member started before NATS waits for it) and
 * `--health-port`/`--health-host` (default: no health server; host 0.0.0.0, for probes from
 * outside a container).
 */
export function serviceSettings<K extends string>(settings: Settings<K | ServiceKey>): ServiceSettings {
  const port = portSetting(settings, "health-port");
  if (port === undefined && settings.get("health-host") !== undefined) {
    throw new QuorateError(ErrorCode.Config, `${describeSetting(settings, "health-host")} needs --health-port`);
  }
  return {
    natsWaitMs: millisecondsSetting(settings, "nats-wait-ms") ?? null,
    natsPingMs: positiveMilliseconds(settings, "nats-ping-ms"),
    health: port === undefined ? null : { port, host: settings.get("health-host") ?? "0.0.0.0" },
  };
}
