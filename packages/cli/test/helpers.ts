import { createServer, type Server, type Socket } from "node:net";

/** A CommandIo that records output and stops when the test says so. */
export function capture(env: Record<string, string> = {}) {
  let stdout = "";
  let stderr = "";
  let stop: (signal: string) => void = () => {};
  const stopSignal = new Promise<string>((resolve) => {
    stop = resolve;
  });
  return {
    io: {
      stdout: (t: string | Uint8Array) => {
        stdout += typeof t === "string" ? t : Buffer.from(t).toString("latin1");
      },
      stderr: (t: string) => {
        stderr += t;
      },
      env,
      stopSignal,
    },
    out: () => stdout,
    err: () => stderr,
    stop: (signal = "SIGTERM") => stop(signal),
  };
}

/** A loopback port nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (address !== null && typeof address === "object" ? resolve(address.port) : reject()));
    });
  });
}

/** Polls until `check` returns a value (not undefined), or fails after `timeoutMs` with the last error. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms: ${String(last)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** GET a loopback URL: status and parsed JSON body. */
export async function getJson(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/**
 * Just enough of the NATS protocol for a client to connect and stay connected: INFO, CONNECT,
 * PING/PONG. Subscriptions and publishes go nowhere, which a single-member cluster never needs.
 */
export class FakeNatsServer {
  readonly #sockets = new Set<Socket>();
  readonly #server: Server;

  constructor(readonly port: number) {
    this.#server = createServer((socket) => {
      this.#sockets.add(socket);
      socket.on("close", () => this.#sockets.delete(socket));
      socket.on("error", () => {});
      const info = { server_id: "FAKE", version: "2.10.0", proto: 1, headers: true, max_payload: 1048576 };
      socket.write(`INFO ${JSON.stringify({ ...info, host: "127.0.0.1", port })}\r\n`);
      let buffer = "";
      socket.on("data", (chunk) => {
        buffer += chunk.toString();
        for (let end = buffer.indexOf("\r\n"); end >= 0; end = buffer.indexOf("\r\n")) {
          const line = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (line === "PING") socket.write("PONG\r\n");
        }
      });
    });
  }

  start(): Promise<void> {
    return new Promise((resolve) => this.#server.listen(this.port, "127.0.0.1", resolve));
  }

  stop(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}
