import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Exit, main } from "../src/index.js";
import { capture, eventually, FakeNatsServer, freePort, getJson } from "./helpers.js";

/**
 * `quorate node` as a service: it waits for NATS instead of exiting, serves /livez and /readyz
 * throughout, and becomes ready once connected with a leader. A single-member cluster elects
 * itself, so a fake NATS server that only keeps the connection up is enough.
 */
describe("quorate node waits for NATS and reports its health", () => {
  it("waits for an unreachable NATS (not ready, but live), then connects, becomes ready and stops cleanly", async () => {
    const [natsPort, healthPort] = [await freePort(), await freePort()];
    const data = join(mkdtempSync(join(tmpdir(), "quorate-lifecycle-")), "data");
    const c = capture();
    const exit = main(
      [
        ...["node", "--cluster", "life", "--id", "n1", "--peers", "n1", "--data", data, "--tick-ms", "10"],
        ...[
          "--nats",
          `nats://127.0.0.1:${natsPort}`,
          "--health-port",
          String(healthPort),
          "--health-host",
          "127.0.0.1",
        ],
      ],
      c.io,
    );
    const health = `http://127.0.0.1:${healthPort}`;
    const waiting = await eventually(async () => {
      const r = await getJson(`${health}/readyz`);
      return c.err().includes("NATS not reachable yet, retrying") ? r : undefined;
    });
    expect(waiting.status).toBe(503);
    expect(waiting.body).toMatchObject({ status: "unavailable", phase: "waiting" });
    expect(waiting.body.reasons).toEqual([`waiting for NATS at nats://127.0.0.1:${natsPort}`]);
    expect((await getJson(`${health}/livez`)).status).toBe(200);
    // Nothing is written while NATS is away.
    expect(existsSync(data)).toBe(false);

    const nats = new FakeNatsServer(natsPort);
    await nats.start();
    try {
      const ready = await eventually(async () => {
        const r = await getJson(`${health}/readyz`);
        return r.status === 200 ? r : undefined;
      }, 20_000);
      expect(ready.body).toMatchObject({ status: "ok", reasons: [], phase: "running", member: { leader: "n1" } });
      expect(c.err()).toContain('"member running"');

      // A lost connection makes the member unready, not dead: it reconnects on its own.
      await nats.stop();
      const cut = await eventually(async () => {
        const r = await getJson(`${health}/readyz`);
        return r.status === 503 ? r : undefined;
      });
      expect(cut.body.reasons).toContain("not connected to NATS");
      expect((await getJson(`${health}/livez`)).status).toBe(200);
    } finally {
      await nats.stop().catch(() => {});
    }
    c.stop("SIGTERM");
    expect(await exit, c.err()).toBe(Exit.Ok);
    // The health server is gone with the member.
    await expect(fetch(`${health}/livez`)).rejects.toThrow();
  });

  it("stops while still waiting for NATS, exiting 0 and writing nothing", async () => {
    const natsPort = await freePort();
    const data = join(mkdtempSync(join(tmpdir(), "quorate-lifecycle-")), "data");
    const c = capture();
    const exit = main(
      [
        ...["node", "--cluster", "life", "--id", "n1", "--peers", "n1", "--data", data],
        ...["--nats", `nats://127.0.0.1:${natsPort}`, "--nats-wait-ms", "20000"],
      ],
      c.io,
    );
    await eventually(async () => (c.err().includes("NATS not reachable yet, retrying") ? true : undefined));
    c.stop("SIGINT");
    expect(await exit).toBe(Exit.Ok);
    expect(c.err()).toContain('"stopped while waiting for NATS"');
    expect(existsSync(data)).toBe(false);
  });

  it("gives up after --nats-wait-ms with Unreachable, having retried", async () => {
    const natsPort = await freePort();
    const c = capture();
    const started = Date.now();
    const code = await main(
      [
        ...["node", "--cluster", "life", "--id", "n1", "--peers", "n1", "--data", "unused"],
        ...["--nats", `nats://127.0.0.1:${natsPort}`, "--nats-wait-ms", "600"],
      ],
      c.io,
    );
    expect(code).toBe(Exit.Error);
    expect(c.err()).toContain("NATS not reachable yet, retrying");
    expect(c.err()).toContain("error (QUORATE_UNREACHABLE)");
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
