import type { NatsConnection } from "@nats-io/transport-node";

/**
 * Helpers for tests of the service surface of members: NATS micro discovery and the HTTP
 * health endpoints. Only loopback URLs are ever fetched.
 */

/** Everything that answers `subject` within `waitMs`, parsed as JSON (a plain client's requestMany). */
export async function requestAll<T>(nc: NatsConnection, subject: string, waitMs = 750): Promise<T[]> {
  const replies: T[] = [];
  const iterator = await nc.requestMany(subject, "", { strategy: "timer", maxWait: waitMs });
  for await (const reply of iterator) {
    // A no-responders status arrives as an empty message.
    if (reply.data.length > 0) replies.push(reply.json<T>());
  }
  return replies;
}

export interface ProbeResponse {
  status: number;
  body: { status: string; reasons: string[]; phase?: string; [key: string]: unknown };
}

/** GET a loopback health endpoint. */
export async function probe(port: number, path: "/livez" | "/readyz"): Promise<ProbeResponse> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(2_000) });
  return { status: res.status, body: (await res.json()) as ProbeResponse["body"] };
}

/** Polls until `check` returns a value; fails after `timeoutMs` naming `what` and the last value seen. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 20_000,
  describeLast: () => string = () => "",
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what}: not within ${timeoutMs} ms (${String(last ?? "")}) ${describeLast()}`);
}
