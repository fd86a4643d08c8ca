import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { booleanSetting, envVariable, resolveSettings } from "../src/config.js";
import { Exit, main } from "../src/index.js";
import { capture } from "./helpers.js";

const KEYS = ["cluster", "id", "peers", "nats", "health-port", "config"] as const;

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "quorate-config-"));
}

function configFile(settings: Record<string, unknown>): string {
  const path = join(tempDir(), "quorate.json");
  writeFileSync(path, JSON.stringify(settings));
  return path;
}

describe("settings from flags, environment and a config file", () => {
  it("names environment variables after the flags; the NATS servers come from NATS_URL", () => {
    expect(envVariable("health-port")).toBe("QUORATE_HEALTH_PORT");
    expect(envVariable("cluster")).toBe("QUORATE_CLUSTER");
    expect(envVariable("nats")).toBe("NATS_URL");
  });

  it("takes flags over environment over file, and says where each value came from", async () => {
    const file = configFile({ cluster: "from-file", id: "n-file", peers: ["n1", "n2"], "health-port": 9000 });
    const settings = await resolveSettings(
      KEYS,
      { config: file, cluster: "from-flag" },
      { QUORATE_CLUSTER: "from-env", QUORATE_ID: "n-env", NATS_URL: "nats://env:4222" },
    );
    expect(settings.get("cluster")).toBe("from-flag");
    expect(settings.source("cluster")).toBe("flag");
    expect(settings.get("id")).toBe("n-env");
    expect(settings.source("id")).toBe("environment");
    expect(settings.get("peers")).toBe("n1,n2");
    expect(settings.get("health-port")).toBe("9000");
    expect(settings.source("health-port")).toBe("config file");
    expect(settings.get("nats")).toBe("nats://env:4222");
  });

  it("treats an empty variable as unset and finds the file through QUORATE_CONFIG", async () => {
    const file = configFile({ id: "n-file" });
    const settings = await resolveSettings(KEYS, {}, { QUORATE_CONFIG: file, QUORATE_ID: "" });
    expect(settings.get("id")).toBe("n-file");
    expect(settings.file).toBe(file);
  });

  it("reads no config file for a command without --config, so a member's QUORATE_CONFIG cannot break a client", async () => {
    const file = configFile({ id: "n-file", "health-port": 1 });
    const settings = await resolveSettings(["cluster", "id"], {}, { QUORATE_CONFIG: file });
    expect(settings.get("id")).toBeUndefined();
    expect(settings.file).toBeUndefined();
  });

  it("rejects unknown keys, naming them and the known ones", async () => {
    const file = configFile({ id: "n1", peer: "n1,n2", helth_port: 1 });
    await expect(resolveSettings(KEYS, { config: file }, {})).rejects.toMatchObject({
      code: "QUORATE_CONFIG",
      message: expect.stringMatching(/unknown keys 'peer', 'helth_port'; known keys: cluster, id, peers/),
    });
  });

  it("rejects unreadable, malformed and non-object files and values of the wrong type", async () => {
    const dir = tempDir();
    await expect(resolveSettings(KEYS, { config: join(dir, "missing.json") }, {})).rejects.toThrow(
      /cannot read config file .*missing\.json \(ENOENT\)/,
    );
    const broken = join(dir, "broken.json");
    writeFileSync(broken, "{ id: n1 }");
    await expect(resolveSettings(KEYS, { config: broken }, {})).rejects.toThrow(/is not valid JSON/);
    writeFileSync(broken, '["n1"]');
    await expect(resolveSettings(KEYS, { config: broken }, {})).rejects.toThrow(/must hold a JSON object/);
    const nested = configFile({ peers: [{ id: "n1" }] });
    await expect(resolveSettings(KEYS, { config: nested }, {})).rejects.toThrow(
      /'peers' must be a string, a number, a boolean or a list of strings/,
    );
  });
});

describe("quorate node validates its configuration before touching NATS or the data directory", () => {
  async function runNode(args: string[], env: Record<string, string> = {}) {
    const c = capture(env);
    const code = await main(["node", ...args, "--nats", "nats://127.0.0.1:1", "--nats-wait-ms", "0"], c.io);
    return { code, err: c.err() };
  }

  it("starts an id outside QUORATE_PEERS as a joining member that says how to add it (a StatefulSet scaled up)", async () => {
    const data = join(tempDir(), "data");
    const { code, err } = await runNode(["--data", data], { QUORATE_ID: "n4", QUORATE_PEERS: "n1,n2,n3" });
    // Past validation: it went on to NATS, which is unreachable here, before touching the data directory.
    expect(code).toBe(Exit.Error);
    expect(err).not.toContain("QUORATE_CONFIG");
    expect(err).toContain("QUORATE_UNREACHABLE");
    expect(err).toContain("starting as a joining member");
    expect(err).toContain("quorate member add n4 --cluster");
    expect(existsSync(data)).toBe(false);
  });

  it("rejects duplicate ids from a config file", async () => {
    const file = configFile({ id: "n1", peers: ["n1", "n2", "n2"], data: join(tempDir(), "data") });
    const { code, err } = await runNode(["--config", file]);
    expect(code).toBe(Exit.Error);
    expect(err).toContain("error (QUORATE_CONFIG): duplicate member id 'n2'");
  });

  it("rejects unknown keys in the config file", async () => {
    const file = configFile({ id: "n1", peers: "n1", data: "x", "tick-msec": 10 });
    const { code, err } = await runNode(["--config", file]);
    expect(code).toBe(Exit.Error);
    expect(err).toMatch(/error \(QUORATE_CONFIG\): config file .* has unknown key 'tick-msec'/);
  });

  it("rejects Paxos quorums that do not intersect, and Paxos settings on a Raft member", async () => {
    const data = join(tempDir(), "data");
    const paxos = await runNode(["--protocol", "paxos", "--id", "n1", "--peers", "n1,n2,n3", "--data", data], {
      QUORATE_Q1: "1",
      QUORATE_Q2: "2",
    });
    expect(paxos.code).toBe(Exit.Error);
    expect(paxos.err).toContain("phase-1 quorum (1) + phase-2 quorum (2) must exceed the number of acceptors (3)");
    expect(existsSync(data)).toBe(false);
    const tooBig = await runNode([
      "--protocol",
      "paxos",
      "--id",
      "n1",
      "--peers",
      "n1,n2,n3",
      "--data",
      data,
      "--q2",
      "4",
    ]);
    expect(tooBig.err).toContain("the phase-2 quorum must be an integer from 1 to 3 (got 4)");
    const raft = await runNode(["--id", "n1", "--peers", "n1", "--data", data, "--q1", "2"]);
    expect(raft.err).toContain("error (QUORATE_CONFIG): --q1 applies to --protocol paxos only");
  });

  it("reads yes/no settings from a flag, the environment or the file, and rejects anything else", async () => {
    const keys = ["join", "lease-reads", "config"] as const;
    const fromFlag = await resolveSettings(keys, { join: true }, {});
    expect(booleanSetting(fromFlag, "join")).toBe(true);
    expect(booleanSetting(fromFlag, "lease-reads")).toBe(false);
    const fromEnv = await resolveSettings(keys, {}, { QUORATE_JOIN: "false", QUORATE_LEASE_READS: "1" });
    expect(booleanSetting(fromEnv, "join")).toBe(false);
    expect(booleanSetting(fromEnv, "lease-reads")).toBe(true);
    const fromFile = await resolveSettings(keys, { config: configFile({ join: true }) }, {});
    expect(booleanSetting(fromFile, "join")).toBe(true);
    const bad = await resolveSettings(keys, {}, { QUORATE_JOIN: "maybe" });
    expect(() => booleanSetting(bad, "join")).toThrow("QUORATE_JOIN (--join) must be true or false (got 'maybe')");
  });

  it("a joining Raft member takes no peers, and Raft-only settings are refused for Paxos", async () => {
    const data = join(tempDir(), "data");
    const both = await runNode(["--id", "n4", "--join", "--peers", "n1,n2,n3", "--data", data]);
    expect(both.code).toBe(Exit.Error);
    expect(both.err).toContain("--join and --peers exclude each other");
    const paxos = await runNode(["--protocol", "paxos", "--id", "n1", "--peers", "n1", "--data", data, "--join"]);
    expect(paxos.err).toContain("error (QUORATE_CONFIG): --join applies to --protocol raft only");
    const groupsPaxos = await runNode([
      "--protocol",
      "paxos",
      "--id",
      "n1",
      "--peers",
      "n1",
      "--data",
      data,
      "--groups",
      "3",
    ]);
    expect(groupsPaxos.err).toContain("error (QUORATE_CONFIG): --groups applies to --protocol raft only");
    const groupsJoin = await runNode(["--id", "n4", "--peers", "n1,n2,n3", "--data", data, "--groups", "3"]);
    expect(groupsJoin.err).toContain("error (QUORATE_CONFIG): --groups needs --peers with this member among them");
    const groupsBad = await runNode(["--id", "n1", "--peers", "n1", "--data", data, "--groups", "a,b.c"]);
    expect(groupsBad.err).toContain("group must be 1-64 characters of letters, digits");
    const threshold = await runNode(["--id", "n1", "--peers", "n1", "--data", data, "--snapshot-threshold", "0"]);
    expect(threshold.err).toContain("--snapshot-threshold must be a positive integer (got '0')");
    expect(existsSync(data)).toBe(false);
  });

  it("rejects a Paxos role whose id is not among that role's members, writing nothing", async () => {
    const data = join(tempDir(), "data");
    const c = capture();
    const code = await main(
      [
        ...["paxos", "acceptor", "--id", "p1", "--data", data, "--nats", "nats://127.0.0.1:1"],
        ...["--acceptors", "a1,a2,a3", "--proposers", "p1", "--learners", "l1"],
      ],
      c.io,
    );
    expect(code).toBe(Exit.Error);
    expect(c.err()).toContain("id 'p1' is not among the members (a1,a2,a3)");
    expect(existsSync(data)).toBe(false);
  });

  it("reports unreadable NATS credentials as a configuration error, writing nothing", async () => {
    const dir = tempDir();
    const { code, err } = await runNode(
      ["--id", "n1", "--peers", "n1", "--data", join(dir, "data"), "--creds", join(dir, "n1.creds")],
      {},
    );
    expect(code).toBe(Exit.Error);
    expect(err).toMatch(/error \(QUORATE_CONFIG\): cannot read NATS credentials file .*n1\.creds \(ENOENT\)/);
    expect(existsSync(join(dir, "data"))).toBe(false);
  });

  it("rejects bad health and wait settings, naming the variable they came from", async () => {
    const base = ["--id", "n1", "--peers", "n1", "--data", "x"];
    expect((await runNode(base, { QUORATE_HEALTH_PORT: "80000" })).err).toContain(
      "QUORATE_HEALTH_PORT (--health-port) must be a port number from 0 to 65535 (got '80000')",
    );
    expect((await runNode([...base, "--health-host", "127.0.0.1"])).err).toContain("--health-host needs --health-port");
    const c = capture();
    await main(["node", ...base, "--nats-wait-ms", "soon"], c.io);
    expect(c.err()).toContain(
      "--nats-wait-ms must be a duration such as 5s, 250ms or 1m, or a whole number of milliseconds, 0 or more (got 'soon')",
    );
    expect((await runNode(base, { QUORATE_NATS_PING_MS: "0" })).err).toContain(
      "QUORATE_NATS_PING_MS (--nats-ping-ms) must be above 0",
    );
  });
});
