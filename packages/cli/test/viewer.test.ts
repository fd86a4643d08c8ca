import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { helpText } from "../src/args.js";
import { VIEWER_SPEC } from "../src/commands/viewer.js";
import { main } from "../src/main.js";
import { capture, eventually, getJson } from "./helpers.js";

/** A saved OTLP/JSON export, one request per line as the Collector's file exporter writes: a round and its send. */
function savedExport(): string {
  const attr = (key: string, value: string | number) => ({
    key,
    value: typeof value === "number" ? { intValue: String(value) } : { stringValue: value },
  });
  const resource = { attributes: [attr("service.instance.id", "demo-n1"), attr("service.namespace", "demo")] };
  const round = {
    traceId: "5b8efff798038103d269b633813fc60c",
    spanId: "eee19b7ec3c1b174",
    name: "raft.round",
    kind: 1,
    startTimeUnixNano: "1764000000000000000",
    endTimeUnixNano: "1764000000002500000",
    attributes: [attr("quorate.cluster", "demo"), attr("quorate.member", "n1"), attr("quorate.raft.term", 1)],
    events: [{ name: "apply", timeUnixNano: "1764000000002400000", attributes: [] }],
  };
  const send = {
    ...round,
    spanId: "eee19b7ec3c1b175",
    parentSpanId: round.spanId,
    name: "publish raft.append",
    kind: 4,
    events: [],
  };
  const line = (span: object) => JSON.stringify({ resourceSpans: [{ resource, scopeSpans: [{ spans: [span] }] }] });
  return `${line(send)}\n${line(round)}\n`;
}

describe("quorate viewer", () => {
  it("serves the rounds of a saved export and the page until stopped", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "viewer-")), "traces.json");
    writeFileSync(file, savedExport());
    const c = capture();
    const exit = main(["viewer", "--port", "0", "--file", file, "--jaeger-url", "http://jaeger:16686"], c.io);
    const url = await eventually(async () => /viewer: (http:\/\/\S+)\//.exec(c.out())?.[1]);
    expect(c.out()).toContain("read 2 spans");
    const rounds = await getJson(`${url}/api/rounds`);
    expect(rounds.body.total).toBe(1);
    expect(rounds.body.rounds).toEqual([
      expect.objectContaining({ kind: "proposal", cluster: "demo", outcome: "applied", durationMs: 2.5 }),
    ]);
    expect((await getJson(`${url}/api/config`)).body).toEqual({ jaegerUrl: "http://jaeger:16686" });
    c.stop();
    expect(await exit).toBe(0);
    expect(c.out()).toMatch(/viewer stopped \(SIGTERM\)/);
    await expect(fetch(`${url}/api/rounds`)).rejects.toThrow();
  });

  it("refuses a bad port, Jaeger URL or file with a Config error", async () => {
    for (const args of [
      ["--port", "70000"],
      ["--port", "x"],
      ["--jaeger-url", "ftp://jaeger"],
      ["--file", "/nonexistent/traces.json"],
      ["--max-rounds", "0"],
      ["extra"],
    ]) {
      const c = capture();
      expect(await main(["viewer", ...args], c.io), args.join(" ")).toBe(2);
      expect(c.err()).toMatch(/QUORATE_CONFIG/);
    }
  });

  it("--help lists every flag with its default", async () => {
    const c = capture();
    expect(await main(["viewer", "--help"], c.io)).toBe(0);
    expect(c.out()).toBe(helpText(VIEWER_SPEC));
    for (const flag of ["--port <port>", "--listen <address>", "--file <file>", "--jaeger-url <url>", "default 4318"])
      expect(c.out()).toContain(flag);
  });
});
