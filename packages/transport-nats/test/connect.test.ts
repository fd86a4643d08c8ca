import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nkeys } from "@nats-io/transport-node";
import { ErrorCode, isQuorateError, type Logger, type QuorateError } from "@quorate/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectNats, type NatsConnectOptions } from "../src/index.js";

/**
 * Just enough of the NATS protocol to accept or refuse a client: INFO, CONNECT, PING/PONG.
 * It records each CONNECT so tests can check which credentials the client presented.
 */
class FakeNatsServer {
  readonly connects: Record<string, unknown>[] = [];
  readonly sockets = new Set<Socket>();
  refuse = false;
  readonly #server: Server;
  port = 0;

  constructor() {
    this.#server = createServer((socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
      socket.on("error", () => {});
      const info = { server_id: "FAKE", version: "2.10.0", proto: 1, headers: true, max_payload: 1048576 };
      socket.write(`INFO ${JSON.stringify({ ...info, host: "127.0.0.1", port: this.port, nonce: "n0nce" })}\r\n`);
      let buffer = "";
      socket.on("data", (chunk) => {
        buffer += chunk.toString();
        for (let end = buffer.indexOf("\r\n"); end >= 0; end = buffer.indexOf("\r\n")) {
          const line = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (line.startsWith("CONNECT ")) {
            this.connects.push(JSON.parse(line.slice(8)) as Record<string, unknown>);
            if (this.refuse) {
              socket.end("-ERR 'Authorization Violation'\r\n");
              return;
            }
          } else if (line === "PING") socket.write("PONG\r\n");
        }
      });
    });
  }
  async start(port = 0): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(port, "127.0.0.1", resolve));
    const address = this.#server.address();
    if (address === null || typeof address !== "object") throw new Error("no address");
    this.port = address.port;
  }
  get url(): string {
    return `127.0.0.1:${this.port}`;
  }
  /** Cuts every client off, as a server restart would. */
  dropClients(): void {
    for (const socket of this.sockets) socket.destroy();
  }
  async stop(): Promise<void> {
    this.dropClients();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

function recordingLogger(): { logger: Logger; messages: string[] } {
  const messages: string[] = [];
  const at = (message: string) => void messages.push(message);
  return { logger: { debug: at, info: at, warn: at, error: at }, messages };
}

async function failure(options: NatsConnectOptions): Promise<QuorateError> {
  const result = await connectNats(options).then(
    (nc) => nc.close().then(() => undefined),
    (err: unknown) => err,
  );
  if (!isQuorateError(result)) throw new Error(`expected a QuorateError, got ${String(result)}`);
  return result;
}

async function closedPort(): Promise<number> {
  const server = new FakeNatsServer();
  await server.start();
  const port = server.port;
  await server.stop();
  return port;
}

describe("connectNats", () => {
  let server: FakeNatsServer;
  let dir: string;

  beforeAll(async () => {
    server = new FakeNatsServer();
    await server.start();
    dir = await mkdtemp(join(tmpdir(), "quorate-nats-"));
  });
  afterAll(async () => {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("presents user and password", async () => {
    const nc = await connectNats({ servers: server.url, user: "alice", pass: "s3cret", name: "member-1" });
    await nc.close();
    expect(server.connects.at(-1)).toMatchObject({ user: "alice", pass: "s3cret", name: "member-1" });
  });

  it("presents a token", async () => {
    const nc = await connectNats({ servers: [server.url], token: "tok" });
    await nc.close();
    expect(server.connects.at(-1)).toMatchObject({ auth_token: "tok" });
  });

  it("signs the server nonce with an nkey seed given inline or as a file", async () => {
    const user = nkeys.createUser();
    const seed = new TextDecoder().decode(user.getSeed());
    const seedFile = join(dir, "user.nk");
    await writeFile(seedFile, `# comment\n${seed}\n`);
    for (const nkeySeed of [seed, seedFile]) {
      const nc = await connectNats({ servers: server.url, nkeySeed });
      await nc.close();
      const connect = server.connects.at(-1) as { nkey: string; sig: string };
      expect(connect.nkey).toBe(user.getPublicKey());
      const signature = Uint8Array.from(Buffer.from(connect.sig, "base64url"));
      expect(nkeys.fromPublic(user.getPublicKey()).verify(new TextEncoder().encode("n0nce"), signature)).toBe(true);
    }
  });

  it("fails with Unreachable, naming the servers, when nothing listens", async () => {
    const port = await closedPort();
    const error = await failure({ servers: [`127.0.0.1:${port}`] });
    expect(error.code).toBe(ErrorCode.Unreachable);
    expect(error.message).toContain(`127.0.0.1:${port}`);
  });

  it("with waitOnFirstConnect, retries until firstConnectTimeoutMs, then fails Unreachable", async () => {
    const port = await closedPort();
    const { logger, messages } = recordingLogger();
    const started = Date.now();
    const error = await connectNats(
      {
        servers: `127.0.0.1:${port}`,
        waitOnFirstConnect: true,
        firstConnectTimeoutMs: 600,
        reconnectTimeWaitMs: 50,
        reconnectJitterMs: 0,
      },
      logger,
    ).then(
      (nc) => nc.close(),
      (err: unknown) => err,
    );
    expect(isQuorateError(error, ErrorCode.Unreachable)).toBe(true);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(messages.filter((m) => m === "NATS not reachable yet, retrying").length).toBeGreaterThanOrEqual(2);
  });

  it("with waitOnFirstConnect, connects once the server comes up", async () => {
    const port = await closedPort();
    const late = new FakeNatsServer();
    setTimeout(() => void late.start(port), 300);
    try {
      const nc = await connectNats({ servers: `127.0.0.1:${port}`, waitOnFirstConnect: true, reconnectTimeWaitMs: 50 });
      await nc.close();
    } finally {
      await late.stop().catch(() => {});
    }
  });

  it("fails with Config when the server rejects the credentials", async () => {
    const refusing = new FakeNatsServer();
    refusing.refuse = true;
    await refusing.start();
    try {
      const error = await failure({ servers: refusing.url, user: "alice", pass: "wrong" });
      expect(error.code).toBe(ErrorCode.Config);
      expect(error.message).toContain(refusing.url);
      expect(error.message).toMatch(/rejected the credentials/);
    } finally {
      await refusing.stop();
    }
  });

  it("fails with Config, naming the file, when a creds, seed or TLS file is unreadable", async () => {
    const missing = join(dir, "missing");
    for (const options of [
      { credsFile: missing },
      { nkeySeed: missing },
      { tls: { caFile: missing } },
      { tls: { certFile: missing, keyFile: missing } },
    ]) {
      const error = await failure({ servers: server.url, ...options });
      expect(error.code, JSON.stringify(options)).toBe(ErrorCode.Config);
      expect(error.message).toContain(missing);
    }
  });

  it("fails with Config on a malformed creds file or seed", async () => {
    const creds = join(dir, "bad.creds");
    await writeFile(creds, "not a creds file");
    expect((await failure({ servers: server.url, credsFile: creds })).code).toBe(ErrorCode.Config);
    const seed = join(dir, "bad.nk");
    await writeFile(seed, "SUAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n");
    const error = await failure({ servers: server.url, nkeySeed: seed });
    expect(error.code).toBe(ErrorCode.Config);
    expect(error.message).not.toContain("SUAAAA");
  });

  it("fails with Config on contradictory or empty settings", async () => {
    for (const options of [
      { servers: server.url, token: "t", user: "u", pass: "p" },
      { servers: server.url, pass: "p" },
      { servers: [] },
      { servers: "" },
      { servers: server.url, tls: { certFile: "/x" } },
    ]) {
      expect((await failure(options)).code, JSON.stringify(options)).toBe(ErrorCode.Config);
    }
  });

  it("reconnects after the server drops it, and logs both transitions", async () => {
    const { logger, messages } = recordingLogger();
    const nc = await connectNats({ servers: server.url, reconnectTimeWaitMs: 20, reconnectJitterMs: 0 }, logger);
    try {
      server.dropClients();
      const deadline = Date.now() + 5_000;
      while (!messages.includes("NATS reconnected") && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(messages).toContain("NATS disconnected; reconnecting");
      expect(messages).toContain("NATS reconnected");
      await nc.flush();
    } finally {
      await nc.close();
    }
  });
});
