import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdirSync, openSync } from "node:fs";
import { createServer } from "node:net";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { NatsConnection } from "@nats-io/transport-node";
import { ErrorCode, QuorateError } from "@quorate/core";
import { connectNats } from "@quorate/transport-nats";
import { type CommandSpec, clusterName, clusterOption, parseWithSettings, positiveInt, usageHint } from "../args.js";
import { DEFAULT_NATS_URL } from "../connection.js";
import { type CommandIo, Exit } from "../io.js";
import { collectStatus, type MemberStatus } from "../member.js";

export const START_SPEC = {
  name: "start",
  summary:
    "Run a local Raft KV cluster until Ctrl-C, starting a NATS server (nats-server or Docker) when none answers.",
  options: {
    ...clusterOption,
    nats: {
      type: "string",
      value: "<url>",
      help: "NATS server to use; one is started when none answers",
      default: DEFAULT_NATS_URL,
    },
    nodes: { type: "string", value: "<n>", help: "how many members", default: "3", flagOnly: true },
    data: {
      type: "string",
      value: "<dir>",
      help: "data root: <dir>/<cluster>/<id>",
      default: ".quorate",
      flagOnly: true,
    },
    otlp: {
      type: "string",
      value: "<endpoint>",
      help: "OTLP endpoint the members export telemetry to",
      flagOnly: true,
    },
  },
} as const satisfies CommandSpec;
const BIN = fileURLToPath(new URL("../bin.js", import.meta.url));

async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => done(port));
    });
  });
}

function onPath(command: string): boolean {
  try {
    execFileSync(command, ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

async function tryConnect(url: string): Promise<NatsConnection | null> {
  try {
    return await connectNats({ servers: url, name: "quorate-start", connectTimeoutMs: 2000 });
  } catch {
    return null;
  }
}

async function waitForConnect(url: string, timeoutMs: number): Promise<NatsConnection> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const nc = await tryConnect(url);
    if (nc !== null) return nc;
    if (Date.now() > deadline)
      throw new QuorateError(ErrorCode.Unreachable, `the NATS server at ${url} did not come up`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A NATS server this command started, and how to stop it. */
interface StartedNats {
  url: string;
  description: string;
  stop(): void;
}

async function startNats(io: CommandIo): Promise<StartedNats> {
  const port = await freePort();
  const url = `nats://127.0.0.1:${port}`;
  if (onPath("nats-server")) {
    const child = spawn("nats-server", ["-a", "127.0.0.1", "-p", String(port)], { stdio: "ignore" });
    return { url, description: `nats-server (pid ${child.pid})`, stop: () => child.kill("SIGTERM") };
  }
  if (onPath("docker")) {
    const image = io.env.QUORATE_NATS_IMAGE ?? "nats:2.10-alpine";
    const id = execFileSync("docker", ["run", "-d", "--rm", "-p", `127.0.0.1:${port}:4222`, image], {
      encoding: "utf8",
    }).trim();
    return {
      url,
      description: `container ${id.slice(0, 12)} (${image})`,
      stop: () => execFileSync("docker", ["stop", id], { stdio: "ignore" }),
    };
  }
  throw new QuorateError(
    ErrorCode.Unreachable,
    `no NATS server answers at ${DEFAULT_NATS_URL} and neither nats-server nor docker is available to start one`,
  );
}

/** The README's main job: a local three-member cluster, running until Ctrl-C. */
export async function startCommand(args: readonly string[], io: CommandIo): Promise<number> {
  const { values, positionals } = await parseWithSettings(args, START_SPEC, io.env);
  if (positionals.length > 0) {
    throw new QuorateError(ErrorCode.Config, `unexpected '${positionals[0]}'\n${usageHint(START_SPEC)}`);
  }
  // --otlp points every member's OpenTelemetry exporter at a collector (Jaeger's OTLP port, say).
  // A health port is per process: three members on one machine cannot share it.
  const { QUORATE_HEALTH_PORT: _healthPort, ...inherited } = process.env;
  const childEnv = values.otlp === undefined ? inherited : { ...inherited, OTEL_EXPORTER_OTLP_ENDPOINT: values.otlp };
  const cluster = clusterName(values.cluster);
  const count = positiveInt(values.nodes, "nodes", 3);
  const dataRoot = resolve(values.data ?? ".quorate", cluster);
  const ids = Array.from({ length: count }, (_, i) => `n${i + 1}`);

  let started: StartedNats | null = null;
  const requested = values.nats ?? DEFAULT_NATS_URL;
  let nc = await tryConnect(requested);
  let url = requested;
  if (nc === null) {
    io.stdout(`No NATS server at ${requested}; starting one...\n`);
    started = await startNats(io);
    url = started.url;
    nc = await waitForConnect(url, 30_000);
    io.stdout(`Started ${started.description} at ${url}\n`);
  } else {
    io.stdout(`Using the NATS server at ${url}\n`);
  }

  const children = new Map<string, ChildProcess>();
  let stopping = false;
  for (const id of ids) {
    mkdirSync(resolve(dataRoot, id), { recursive: true });
    const log = openSync(resolve(dataRoot, `${id}.log`), "a");
    const child = spawn(
      process.execPath,
      [
        BIN,
        "node",
        "--protocol",
        "raft",
        "--cluster",
        cluster,
        "--id",
        id,
        "--peers",
        ids.join(","),
        "--data",
        resolve(dataRoot, id),
        "--nats",
        url,
      ],
      { stdio: ["ignore", log, log], env: childEnv },
    );
    child.on("exit", (code, signal) => {
      if (!stopping)
        io.stderr(
          `member ${id} exited unexpectedly (code ${code}, signal ${signal}); see ${resolve(dataRoot, `${id}.log`)}\n`,
        );
    });
    children.set(id, child);
  }
  io.stdout(`Starting ${count} Raft members (${ids.join(", ")}), data in ${dataRoot}\n`);

  const deadline = Date.now() + 60_000;
  let leader: MemberStatus | undefined;
  while (Date.now() < deadline) {
    const members = await collectStatus(nc, cluster, 300);
    leader = members.find((m) => m.role === "leader");
    io.stdout(`  ${members.length}/${count} members answering, leader: ${leader?.id ?? "electing..."}\n`);
    if (leader !== undefined && members.length === count) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  const stopAll = async (): Promise<void> => {
    stopping = true;
    await Promise.all(
      [...children.values()].map(
        (child) =>
          new Promise<void>((done) => {
            if (child.exitCode !== null) return done();
            const kill = setTimeout(() => child.kill("SIGKILL"), 10_000);
            child.once("exit", () => {
              clearTimeout(kill);
              done();
            });
            child.kill("SIGTERM");
          }),
      ),
    );
    await nc.close();
    started?.stop();
  };
  if (leader === undefined) {
    await stopAll();
    io.stderr(`no leader was elected within 60 s; member logs are in ${dataRoot}\n`);
    return Exit.Error;
  }
  io.stdout(
    [
      "",
      `Quorate cluster '${cluster}' is up: ${count} members, leader ${leader.id} (term ${leader.term}).`,
      "In another terminal:",
      `  pnpm quorate kv put greeting hello --cluster ${cluster} --nats ${url}`,
      `  pnpm quorate kv get greeting --cluster ${cluster} --nats ${url}`,
      `  pnpm quorate status --cluster ${cluster} --nats ${url}`,
      "Press Ctrl-C to stop everything.",
      "",
    ].join("\n"),
  );
  const signal = await io.stopSignal;
  io.stdout(`\n${signal}: stopping members${started === null ? "" : " and NATS"}...\n`);
  await stopAll();
  io.stdout("Stopped.\n");
  return Exit.Ok;
}
