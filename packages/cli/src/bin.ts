#!/usr/bin/env node
import { main } from "./main.js";

const stopSignal = new Promise<string>((resolve) => {
  process.once("SIGINT", () => resolve("SIGINT"));
  process.once("SIGTERM", () => resolve("SIGTERM"));
});

const code = await main(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
  stopSignal,
});
process.exitCode = code;
// Open handles (a NATS connection closing slowly) must not keep a finished command alive.
setTimeout(() => process.exit(code), 2000).unref();
