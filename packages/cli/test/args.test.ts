import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { helpText, parse, parseWithSettings, usageLine } from "../src/args.js";
import { describeValue, KV_SPEC } from "../src/commands/kv.js";
import { STATUS_SPEC } from "../src/commands/status.js";
import { natsConnectOptions, natsContextPath, readNatsContext } from "../src/connection.js";
import { durationMs, parseDurationMs } from "../src/duration.js";
import { Exit, main } from "../src/index.js";
import { COMMANDS } from "../src/main.js";
import { capture } from "./helpers.js";

const VERSION = (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string })
  .version;

/** How a command is invoked to reach each of its subcommands (or roles). */
const INVOCATIONS: Record<string, string[][]> = {
  start: [["start"]],
  node: [["node"]],
  paxos: [["paxos"], ["paxos", "acceptor"], ["paxos", "proposer"], ["paxos", "learner"]],
  kv: [["kv"], ["kv", "get"], ["kv", "put"], ["kv", "del"], ["kv", "cas"]],
  lock: [["lock"], ["lock", "job"]],
  elect: [["elect"], ["elect", "primary"]],
  status: [["status"]],
  leader: [["leader"], ["leader", "transfer"]],
  member: [["member"], ["member", "list"], ["member", "add"], ["member", "promote"], ["member", "remove"]],
  snapshot: [["snapshot"], ["snapshot", "save"], ["snapshot", "restore"]],
  check: [["check"]],
  viewer: [["viewer"]],
};

describe("help comes from the option tables that parse the flags", () => {
  it("covers every command", () => {
    expect(Object.keys(INVOCATIONS).sort()).toEqual(Object.keys(COMMANDS).sort());
  });

  for (const [name, invocations] of Object.entries(INVOCATIONS)) {
    it(`quorate ${name}: --help and -h exit 0 on every subcommand and list every flag of the table`, async () => {
      const command = COMMANDS[name];
      if (command === undefined) throw new Error(`no command ${name}`);
      for (const args of invocations) {
        for (const flag of ["--help", "-h"]) {
          const c = capture();
          expect(await main([...args, flag], c.io), `${args.join(" ")} ${flag}`).toBe(Exit.Ok);
          expect(c.err()).toBe("");
          expect(c.out()).toBe(helpText(command.spec));
        }
      }
      const help = helpText(command.spec);
      const usage = usageLine(command.spec);
      for (const key of Object.keys(command.spec.options)) {
        expect(help).toContain(`--${key}`);
        expect(usage).toContain(`--${key}`);
      }
    });
  }

  it("the node usage line names the credential, TLS, health and ping flags a bad flag is answered with", async () => {
    const c = capture();
    expect(await main(["node", "--bogus"], c.io)).toBe(Exit.Error);
    for (const flag of ["--creds", "--nkey", "--token", "--tls-ca", "--tls-cert", "--health-host", "--nats-ping-ms"]) {
      expect(c.err()).toContain(flag);
    }
  });

  it("a flag after -- is a positional, not a help request", async () => {
    const c = capture();
    expect(await main(["kv", "put", "k", "--nats", "nats://127.0.0.1:1", "--", "-h"], c.io)).toBe(Exit.Error);
    expect(c.err()).toContain("QUORATE_UNREACHABLE");
  });

  it("--version prints the package's version", async () => {
    for (const flag of ["--version", "version"]) {
      const c = capture();
      expect(await main([flag], c.io)).toBe(Exit.Ok);
      expect(c.out()).toBe(`quorate ${VERSION}\n`);
    }
  });

  it("the overview names every command and how to get its help", async () => {
    const c = capture();
    expect(await main(["--help"], c.io)).toBe(Exit.Ok);
    for (const name of Object.keys(COMMANDS)) expect(c.out()).toContain(`quorate ${name}`);
    expect(c.out()).toContain("quorate <command> --help");
  });
});

describe("durations as the NATS CLI writes them", () => {
  it("reads Go durations and bare milliseconds", () => {
    expect(parseDurationMs("5s")).toBe(5_000);
    expect(parseDurationMs("250ms")).toBe(250);
    expect(parseDurationMs("1m")).toBe(60_000);
    expect(parseDurationMs("1m30s")).toBe(90_000);
    expect(parseDurationMs("1.5s")).toBe(1_500);
    expect(parseDurationMs("2h")).toBe(7_200_000);
    expect(parseDurationMs("1000")).toBe(1_000);
    expect(parseDurationMs("0")).toBe(0);
  });

  it("refuses what is not one, and fractions of a millisecond", () => {
    for (const bad of ["", "s", "-5s", "5x", "5 s", "1.5ms", "soon", "5s junk"]) {
      expect(parseDurationMs(bad), bad).toBeNull();
    }
    expect(() => durationMs("0", "wait-ms", 1)).toThrow("--wait-ms must be a duration above 0");
    expect(durationMs(undefined, "wait-ms", 1_000)).toBe(1_000);
    expect(durationMs("2s", "wait-ms", 1_000)).toBe(2_000);
  });

  it("takes the NATS CLI's flag names (--timeout, --wait, --tick, --nats-wait) as the -ms settings", async () => {
    expect(parse(["get", "k", "--timeout", "5s"], KV_SPEC).values).toEqual({ "timeout-ms": "5s" });
    expect(parse(["--wait", "2s"], STATUS_SPEC).values).toEqual({ "wait-ms": "2s" });
    expect(() => parse(["get", "k", "--timeout", "5s", "--timeout-ms", "100"], KV_SPEC)).toThrow(
      "--timeout and --timeout-ms are one setting",
    );
    // The -ms name stays the setting: QUORATE_TIMEOUT_MS, and no QUORATE_TIMEOUT.
    const { values } = await parseWithSettings(["get", "k"], KV_SPEC, {
      QUORATE_TIMEOUT: "1s",
      QUORATE_TIMEOUT_MS: "3s",
    });
    expect(values).toMatchObject({ "timeout-ms": "3s" });
    const dir = join(mkdtempSync(join(tmpdir(), "quorate-alias-")), "data");
    const c = capture();
    const args = ["node", "--id", "n1", "--peers", "n1", "--data", dir, "--tick", "20ms"];
    expect(await main([...args, "--nats", "nats://127.0.0.1:1", "--nats-wait", "0s"], c.io)).toBe(Exit.Error);
    expect(c.err()).toContain("QUORATE_UNREACHABLE");
  });

  it("a time flag takes a duration: quorate check --timeout-ms 1m", async () => {
    const c = capture();
    expect(await main(["check", join(tmpdir(), "no-such-history.edn"), "--timeout-ms", "later"], c.io)).toBe(
      Exit.Error,
    );
    expect(c.err()).toContain("--timeout-ms must be a duration above 0 such as 5s, 250ms or 1m");
  });
});

function contextHome(name: string, context: Record<string, unknown>): string {
  const home = mkdtempSync(join(tmpdir(), "quorate-xdg-"));
  mkdirSync(join(home, "nats", "context"), { recursive: true });
  writeFileSync(join(home, "nats", "context", `${name}.json`), JSON.stringify(context));
  return home;
}

describe("NATS CLI contexts", () => {
  // As `nats context save` writes it: every field, unset ones empty.
  const saved = {
    description: "production",
    url: "nats://a:4222,nats://b:4222",
    token: "",
    user: "app",
    password: "secret",
    creds: "",
    nkey: "",
    cert: "~/certs/client.pem",
    key: "/etc/certs/client-key.pem",
    ca: "/etc/certs/ca.pem",
    nsc: "",
    jetstream_domain: "",
    inbox_prefix: "",
  };

  it("finds a context under XDG_CONFIG_HOME, else ~/.config, and refuses names that are paths", () => {
    expect(natsContextPath("prod", { XDG_CONFIG_HOME: "/x" })).toBe("/x/nats/context/prod.json");
    expect(natsContextPath("prod", {})).toBe(join(homedir(), ".config", "nats", "context", "prod.json"));
    expect(() => natsContextPath("../etc/passwd", {})).toThrow("is not a context name");
  });

  it("maps the NATS CLI's fields to the flags, skipping empty and foreign ones, expanding ~", async () => {
    const env = { XDG_CONFIG_HOME: contextHome("prod", saved) };
    expect(await readNatsContext("prod", env)).toEqual({
      nats: "nats://a:4222,nats://b:4222",
      user: "app",
      password: "secret",
      "tls-cert": join(homedir(), "certs/client.pem"),
      "tls-key": "/etc/certs/client-key.pem",
      "tls-ca": "/etc/certs/ca.pem",
    });
  });

  it("fills what flags and the environment leave unset; they win where both set a value", async () => {
    const env = { XDG_CONFIG_HOME: contextHome("prod", saved), NATS_URL: "nats://env:4222", QUORATE_USER: "ops" };
    const { values } = await parseWithSettings(["get", "k", "--context", "prod", "--password", "flag"], KV_SPEC, env);
    const options = await natsConnectOptions(values, env, "test");
    expect(options).toMatchObject({
      servers: ["nats://env:4222"],
      user: "ops",
      pass: "flag",
      tls: { caFile: "/etc/certs/ca.pem", keyFile: "/etc/certs/client-key.pem" },
    });
  });

  it("a missing or malformed context is a Config error naming the file", async () => {
    const env = { XDG_CONFIG_HOME: contextHome("bad", { url: 4222 }) };
    await expect(readNatsContext("absent", env)).rejects.toMatchObject({
      code: "QUORATE_CONFIG",
      message: expect.stringContaining("cannot read NATS context 'absent'"),
    });
    await expect(readNatsContext("bad", env)).rejects.toMatchObject({
      code: "QUORATE_CONFIG",
      message: expect.stringContaining("'url' must be a string"),
    });
  });
});

describe("client commands read the connection from the environment, as quorate node does", () => {
  it("takes credentials, TLS files and the cluster from QUORATE_* and the servers from NATS_URL", async () => {
    const env = {
      NATS_URL: "nats://env:4222",
      QUORATE_CLUSTER: "prod",
      QUORATE_CREDS: "/run/app.creds",
      QUORATE_TLS_CA: "/run/ca.pem",
      QUORATE_TIMEOUT_MS: "3s",
    };
    const { values } = await parseWithSettings(["get", "k"], KV_SPEC, env);
    expect(values).toMatchObject({ cluster: "prod", creds: "/run/app.creds", "timeout-ms": "3s" });
    expect(await natsConnectOptions(values, env, "t")).toMatchObject({
      servers: ["nats://env:4222"],
      credsFile: "/run/app.creds",
      tls: { caFile: "/run/ca.pem" },
    });
  });

  it("never reads a per-invocation flag (--json) from the environment", async () => {
    const { values } = await parseWithSettings(["get", "k"], KV_SPEC, { QUORATE_JSON: "true" });
    expect(values.json).toBeUndefined();
  });
});

describe("kv get output", () => {
  it("marks bytes so they cannot pass for a string", () => {
    expect(describeValue("hello")).toBe("hello");
    expect(describeValue(new Uint8Array([0x68, 0x65, 0x6c, 0x6c, 0x6f]))).toBe("<5 bytes: 68656c6c6f>");
    expect(describeValue(new Uint8Array([0]))).toBe("<1 byte: 00>");
  });

  it("--raw only goes with get, without --json", async () => {
    for (const args of [
      ["kv", "put", "k", "v", "--raw"],
      ["kv", "get", "k", "--raw", "--json"],
    ]) {
      const c = capture();
      expect(await main(args, c.io)).toBe(Exit.Error);
      expect(c.err()).toContain("--raw applies to 'quorate kv get' without --json");
    }
  });
});
