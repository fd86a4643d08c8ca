import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { collectStatus, type MemberStatus } from "../../packages/cli/src/index.js";
import type { NatsConnection } from "../../packages/transport-nats/src/index.js";

/** The built CLI: integration tests run members as separate processes, as users do. */
export const CLI = resolve(import.meta.dirname, "../../packages/cli/dist/bin.js");

/**
 * `quorate <args>` against `cluster` on a server with user/password authentication: resolves
 * with stdout, rejects with { code, stderr } on a non-zero exit.
 */
export function quorateCommand(
  cluster: string,
  nats: { readonly url: string; readonly user: string; readonly pass: string },
): (...args: string[]) => Promise<string> {
  const run = promisify(execFile);
  const auth = ["--cluster", cluster, "--nats", nats.url, "--user", nats.user, "--password", nats.pass];
  return async (...args) => (await run(process.execPath, [CLI, ...args, ...auth])).stdout;
}

export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * `quorate <args>` as a process, `input` on its stdin. With `until`, it is sent SIGINT once its
 * stdout satisfies `until` (for commands that stream until stopped).
 */
export function runQuorate(args: readonly string[], input = "", until?: (stdout: string) => boolean): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let interrupted = false;
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      if (until !== undefined && !interrupted && until(stdout)) {
        interrupted = true;
        child.kill("SIGINT");
      }
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.once("error", reject);
    child.once("exit", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

export interface MemberProcess {
  readonly id: string;
  readonly dataDir: string;
  /** Everything the process wrote to stderr (its JSON log lines), for failure messages. */
  readonly output: () => string;
  start(): void;
  /** SIGKILL: no shutdown, no flush; exactly a crash. */
  kill(): Promise<void>;
  /** SIGTERM and wait for a clean exit; resolves with the exit code. */
  stop(): Promise<number | null>;
  readonly running: boolean;
}

export interface MemberSetOptions {
  cluster: string;
  ids: string[];
  natsUrl: string;
  user: string;
  pass: string;
  protocolArgs?: string[];
  /** Extra environment for every member process (OTEL_* for telemetry tests). */
  env?: Record<string, string>;
}

/**
 * One CLI process (`quorate <args...>`), restartable: each start() spawns it again with the same
 * arguments, so it comes back on the same data directory.
 */
export function cliProcess(
  id: string,
  dataDir: string,
  args: readonly string[],
  env?: Record<string, string>,
): MemberProcess {
  let child: ChildProcess | null = null;
  let output = "";
  const exited = () => child === null || child.exitCode !== null || child.signalCode !== null;
  return {
    id,
    dataDir,
    output: () => output,
    get running() {
      return !exited();
    },
    start() {
      child = spawn(process.execPath, [CLI, ...args], {
        stdio: ["ignore", "ignore", "pipe"],
        env: { ...process.env, ...env },
      });
      child.stderr?.on("data", (chunk: Buffer) => {
        output += chunk.toString();
        if (output.length > 200_000) output = output.slice(-100_000);
      });
    },
    async kill() {
      const c = child;
      if (c === null || exited()) return;
      await new Promise<void>((done) => {
        c.once("exit", () => done());
        c.kill("SIGKILL");
      });
    },
    async stop() {
      const c = child;
      if (c === null || exited()) return c?.exitCode ?? null;
      return new Promise<number | null>((done) => {
        c.once("exit", (code) => done(code));
        c.kill("SIGTERM");
      });
    },
  };
}

/** Members as `quorate node` processes (Raft unless `protocolArgs` say otherwise) sharing one temporary data root. */
export function memberSet(options: MemberSetOptions): { members: MemberProcess[]; cleanup(): Promise<void> } {
  const root = mkdtempSync(join(tmpdir(), `quorate-${options.cluster}-`));
  const members = options.ids.map((id) => {
    const dataDir = join(root, id);
    const args = [
      "node",
      ...(options.protocolArgs ?? ["--protocol", "raft"]),
      ...["--cluster", options.cluster, "--id", id, "--peers", options.ids.join(","), "--data", dataDir],
      ...["--nats", options.natsUrl, "--user", options.user, "--password", options.pass, "--log-level", "info"],
    ];
    return cliProcess(id, dataDir, args, options.env);
  });
  return {
    members,
    async cleanup() {
      await Promise.all(members.map((m) => m.kill()));
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Polls until `predicate` holds for the cluster's statuses; fails with the last statuses seen. */
export async function waitForCluster(
  nc: NatsConnection,
  cluster: string,
  predicate: (members: MemberStatus[]) => boolean,
  timeoutMs = 30_000,
): Promise<MemberStatus[]> {
  const deadline = Date.now() + timeoutMs;
  let last: MemberStatus[] = [];
  while (Date.now() < deadline) {
    last = await collectStatus(nc, cluster, 300);
    if (predicate(last)) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`cluster ${cluster} did not reach the expected state; last status: ${JSON.stringify(last)}`);
}
