import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KvClient } from "../../packages/kv/src/nats.js";
import { connectNats, type NatsConnection } from "../../packages/transport-nats/src/index.js";
import { type RoundModel, type RoundQuery, startViewer, type Viewer } from "../../packages/viewer/src/index.js";
import { cliProcess, type MemberProcess, memberSet, waitForCluster } from "../harness/members.js";
import { type NatsServer, startNats } from "../harness/nats.js";
import { otlpEnv } from "../harness/otlp.js";

/**
 * The round viewer end to end: members on NATS export OTLP (protobuf, gzip) to the viewer, and
 * Debian's Chromium, driven by playwright-core, shows their rounds. Screenshots go to
 * $QUORATE_VIEWER_SCREENSHOTS when it is set (docs/ keeps the ones the README shows).
 */

const CHROMIUM = process.env.QUORATE_CHROMIUM ?? "/usr/bin/chromium";
const SCREENSHOTS = process.env.QUORATE_VIEWER_SCREENSHOTS;

/** The members' OTLP settings: the default protocol (protobuf), gzipped, pointed at the viewer. */
const exportTo = (viewer: Viewer) => ({
  ...otlpEnv(viewer),
  OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf",
  OTEL_EXPORTER_OTLP_COMPRESSION: "gzip",
});

/** The first round matching `query` whose model satisfies `done`, polled until it does. */
async function waitForRound(
  viewer: Viewer,
  query: RoundQuery,
  done: (model: RoundModel) => boolean,
  timeoutMs = 30_000,
): Promise<RoundModel> {
  const deadline = Date.now() + timeoutMs;
  let seen: unknown[] = [];
  while (Date.now() < deadline) {
    const page = viewer.store.query({ ...query, limit: 1000 });
    seen = page.rounds.map((r) => [r.kind, r.label, r.outcome, r.lanes]);
    for (const summary of page.rounds) {
      const model = viewer.store.round(summary.id);
      if (model !== undefined && done(model)) return model;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`no round matched within ${timeoutMs} ms; rounds seen: ${JSON.stringify(seen)}`);
}

/** Opens the page, filters the list to `kind`, clicks the round's row, and waits for its diagram. */
async function showRound(page: Page, viewer: Viewer, model: RoundModel): Promise<void> {
  await page.goto(`${viewer.url}/`);
  await page.selectOption("#filters select[name=kind]", model.kind);
  const row = page.locator(`#list .row[data-round-id="${model.id}"]`);
  await row.waitFor({ timeout: 10_000 });
  await row.click();
  await page.locator(`svg.sequence[data-round-id="${model.id}"]`).waitFor({ timeout: 10_000 });
}

/** Pairs of labels in the diagram whose boxes on the page intersect; none, when the layout works. */
async function overlappingLabels(page: Page): Promise<string[]> {
  return page.locator("svg.sequence text.label").evaluateAll((texts) => {
    const boxes = texts.map((t) => ({ text: t.textContent ?? "", r: t.getBoundingClientRect() }));
    const overlaps: string[] = [];
    boxes.forEach((a, i) => {
      for (const b of boxes.slice(i + 1)) {
        if (a.r.left < b.r.right && b.r.left < a.r.right && a.r.top < b.r.bottom && b.r.top < a.r.bottom)
          overlaps.push(`${a.text} × ${b.text}`);
      }
    });
    return overlaps;
  });
}

async function screenshot(page: Page, name: string): Promise<void> {
  if (SCREENSHOTS === undefined) return;
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, name), fullPage: false });
}

describe("the round viewer in a real browser", () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let viewer: Viewer;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    expect(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium`).toBe(true);
    viewer = await startViewer({ port: 0, jaegerUrl: "http://127.0.0.1:16686" });
    nats = await startNats();
    nc = await connectNats({ ...nats.connectOptions(), name: "viewer-test" });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  });

  afterAll(async () => {
    await browser?.close();
    await nc?.close();
    await nats?.stop();
    await viewer?.close();
  });

  describe("three Raft members", () => {
    const CLUSTER = "itviewer";
    let members: MemberProcess[] = [];
    let cleanup: () => Promise<void> = async () => {};

    beforeAll(async () => {
      const set = memberSet({
        cluster: CLUSTER,
        ids: ["n1", "n2", "n3"],
        natsUrl: nats.url,
        user: nats.user,
        pass: nats.pass,
        env: exportTo(viewer),
      });
      members = set.members;
      cleanup = set.cleanup;
      for (const m of members) m.start();
      await waitForCluster(nc, CLUSTER, (s) => s.length === 3 && s.some((m) => m.role === "leader"));
    });

    afterAll(() => cleanup());

    it("a put shows as a round with three lanes, AppendEntries arrows and the quorum mark", async () => {
      const client = await KvClient.connect({ nats: nats.connectOptions(), cluster: CLUSTER, timeoutMs: 20_000 });
      await client.put("viewer", "hello");
      await client.close();
      const model = await waitForRound(
        viewer,
        { cluster: CLUSTER, kind: "proposal" },
        (m) =>
          m.outcome === "applied" &&
          m.requests.some((r) => r.name === "kv.serve.put") &&
          m.laneList.filter((l) => l.exported).length === 3 &&
          m.arrows.some((a) => a.quorum && a.receivedMs !== undefined),
      );
      expect(viewer.counters.rejected).toBe(0);

      await showRound(page, viewer, model);
      const diagram = page.locator("svg.sequence");
      expect(await diagram.getAttribute("data-lanes")).toBe("3");
      const lanes = await page
        .locator("svg.sequence g.lane")
        .evaluateAll((gs) => gs.map((g) => g.getAttribute("data-role")));
      expect(lanes).toEqual(["leader", "follower", "follower"]);
      const appends = page.locator('svg.sequence g.arrow[data-type="raft.append"][data-direction="request"]');
      const targets = await appends.evaluateAll((gs) => [...new Set(gs.map((g) => g.getAttribute("data-to")))]);
      expect(targets.sort()).toEqual(
        [`${CLUSTER}-n1`, `${CLUSTER}-n2`, `${CLUSTER}-n3`].filter((l) => l !== model.laneList[0]?.id),
      );
      await expect.poll(() => page.locator('svg.sequence g.arrow[data-quorum="true"]').count()).toBe(1);
      expect(await page.locator('svg.sequence g.arrow[data-quorum="true"]').getAttribute("data-type")).toBe(
        "raft.append.resp",
      );
      expect(await page.locator('svg.sequence g.mark[data-kind="quorum"]').count()).toBe(1);
      for (const kind of ["fsync", "commit", "apply"])
        expect(await page.locator(`svg.sequence g.mark[data-kind="${kind}"]`).count(), kind).toBeGreaterThan(0);
      // The list row carries the link to Jaeger, and the stats count the round.
      expect(await page.locator(`#list .row[data-round-id="${model.id}"] a.jaeger`).getAttribute("href")).toBe(
        `http://127.0.0.1:16686/trace/${model.traceId}`,
      );
      expect(Number(await page.locator('#stats tr[data-kind="proposal"] td').nth(1).textContent())).toBeGreaterThan(0);
      const timings = await page.evaluate(
        () => (globalThis as unknown as { viewerTimings: Record<string, number> }).viewerTimings,
      );
      expect(timings.roundRenders).toBeGreaterThan(0);
      // Each request arrow says what it carries: type, entries and the frame's size.
      for (const label of await appends.locator("text.label").allTextContents())
        expect(label).toMatch(/^raft\.append · \d+ entr(y|ies) · \d+ B$/);
      expect(await page.locator("svg.sequence text.label").count()).toBeGreaterThan(5);
      expect(await overlappingLabels(page)).toEqual([]);
      await screenshot(page, "viewer-raft-round.png");
    });

    it("a linearizable get shows as a read round: the leader's heartbeat to both followers, their acks and the quorum mark", async () => {
      const client = await KvClient.connect({ nats: nats.connectOptions(), cluster: CLUSTER, timeoutMs: 20_000 });
      expect(await client.get("viewer")).toBe("hello");
      await client.close();
      const model = await waitForRound(
        viewer,
        { cluster: CLUSTER, kind: "read" },
        (m) =>
          m.outcome === "served" &&
          m.requests.some((r) => r.name === "kv.serve.get") &&
          m.laneList.filter((l) => l.exported).length === 3 &&
          m.arrows.some((a) => a.quorum && a.receivedMs !== undefined),
      );
      await showRound(page, viewer, model);
      expect(await page.locator("svg.sequence").getAttribute("data-lanes")).toBe("3");
      const roles = await page
        .locator("svg.sequence g.lane")
        .evaluateAll((gs) => gs.map((g) => g.getAttribute("data-role")));
      expect(roles).toEqual(["leader", "follower", "follower"]);
      expect(await page.locator("#round-info h2").textContent()).toMatch(
        /^read round · term \d+ read index \d+ · served$/,
      );
      const heartbeats = page.locator('svg.sequence g.arrow[data-type="raft.append"][data-direction="request"]');
      const targets = await heartbeats.evaluateAll((gs) => gs.map((g) => g.getAttribute("data-to")).sort());
      expect(targets).toEqual(
        model.laneList
          .slice(1)
          .map((l) => l.id)
          .sort(),
      );
      // A heartbeat carries no entries: its label is its type and size.
      for (const label of await heartbeats.locator("text.label").allTextContents())
        expect(label).toMatch(/^raft\.append · \d+ B$/);
      const quorum = page.locator('svg.sequence g.arrow[data-quorum="true"]');
      await expect.poll(() => quorum.count()).toBe(1);
      expect(await quorum.getAttribute("data-type")).toBe("raft.append.resp");
      expect(await quorum.locator("text.label").textContent()).toMatch(/^raft\.append\.resp · \d+ B$/);
      for (const kind of ["quorum", "confirmed", "served", "reply", "ack"])
        expect(await page.locator(`svg.sequence g.mark[data-kind="${kind}"]`).count(), kind).toBeGreaterThan(0);
      expect(await page.locator('#stats tr[data-kind="read"] td').first().textContent()).toBe("read round");
      expect(await overlappingLabels(page)).toEqual([]);
      await screenshot(page, "viewer-raft-read.png");
    });

    it("killing the leader shows the election that follows, with its votes", async () => {
      const now = await waitForCluster(nc, CLUSTER, (s) => s.some((m) => m.role === "leader"));
      const leader = members.find((m) => m.id === now.find((s) => s.role === "leader")?.id);
      expect(leader).toBeDefined();
      const killedAt = Date.now();
      await leader?.kill();
      const model = await waitForRound(
        viewer,
        { cluster: CLUSTER, kind: "election", outcome: "won" },
        (m) => m.startMs >= killedAt && m.arrows.some((a) => a.quorum && a.phase === "vote"),
      );
      await showRound(page, viewer, model);
      expect(Number(await page.locator("svg.sequence").getAttribute("data-lanes"))).toBeGreaterThanOrEqual(2);
      expect(await page.locator('svg.sequence g.lane[data-role="candidate"]').count()).toBe(1);
      expect(await page.locator('svg.sequence g.arrow[data-type="raft.vote"]').count()).toBeGreaterThan(0);
      expect(await page.locator('svg.sequence g.mark[data-kind="vote-granted"]').count()).toBeGreaterThan(0);
      expect(await page.locator('svg.sequence g.arrow[data-quorum="true"]').count()).toBeGreaterThan(0);
      expect(await page.locator("#round-info h2").textContent()).toMatch(/election .* won/);
      expect(await overlappingLabels(page)).toEqual([]);
      await screenshot(page, "viewer-raft-election.png");
    });
  });

  describe("a Paxos deployment, each role its own process", () => {
    const CLUSTER = "itviewerpaxos";
    const ACCEPTORS = ["a1", "a2", "a3"];
    const processes: MemberProcess[] = [];
    let root: string;

    beforeAll(async () => {
      root = mkdtempSync(join(tmpdir(), "quorate-viewer-paxos-"));
      const roles = [
        ...ACCEPTORS.map((id) => ["acceptor", id] as const),
        ["learner", "l1"] as const,
        ["proposer", "p1"] as const,
      ];
      for (const [role, id] of roles) {
        const dataDir = join(root, id);
        const args = [
          ...["paxos", role, "--cluster", CLUSTER, "--id", id, "--data", dataDir, "--nats", nats.url],
          ...["--acceptors", ACCEPTORS.join(","), "--proposers", "p1", "--learners", "l1"],
          ...["--user", nats.user, "--password", nats.pass, "--log-level", "info"],
        ];
        processes.push(cliProcess(id, dataDir, args, exportTo(viewer)));
      }
      for (const p of processes) p.start();
      await waitForCluster(
        nc,
        CLUSTER,
        (s) =>
          s.length === 5 &&
          s.some((m) => m.role === "proposer:active") &&
          s.some((m) => m.role === "learner" && m.leader !== null),
      );
    });

    afterAll(async () => {
      await Promise.all(processes.map((p) => p.kill()));
      if (root !== undefined) rmSync(root, { recursive: true, force: true });
    });

    it("a put shows as a phase 2 with the request, the acceptors' votes, the quorum and the learner applying", async () => {
      const client = await KvClient.connect({ nats: nats.connectOptions(), cluster: CLUSTER, timeoutMs: 20_000 });
      await client.put("viewer", "hello");
      await client.close();
      const model = await waitForRound(
        viewer,
        { cluster: CLUSTER, kind: "phase2" },
        (m) =>
          m.outcome === "chosen" &&
          m.arrows.some((a) => a.type === "paxos.request") &&
          m.arrows.some((a) => a.quorum) &&
          m.marks.some((k) => k.kind === "apply"),
      );
      await showRound(page, viewer, model);
      const roles = await page
        .locator("svg.sequence g.lane")
        .evaluateAll((gs) => gs.map((g) => g.getAttribute("data-role")));
      expect(roles[0]).toBe("proposer");
      expect(roles).toContain("learner");
      expect(roles.filter((r) => r === "acceptor").length).toBeGreaterThanOrEqual(2);
      expect(await page.locator('svg.sequence g.arrow[data-type="paxos.p2a"]').count()).toBeGreaterThanOrEqual(3);
      expect(await page.locator('svg.sequence g.arrow[data-quorum="true"]').getAttribute("data-type")).toBe(
        "paxos.p2b",
      );
      expect(await page.locator('svg.sequence g.mark[data-kind="chosen"]').count()).toBeGreaterThan(0);
      expect(await overlappingLabels(page)).toEqual([]);
      await screenshot(page, "viewer-paxos-phase2.png");
    });
  });
});
