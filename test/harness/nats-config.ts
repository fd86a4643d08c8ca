import { readFileSync } from "node:fs";
import { GenericContainer, type StartedNetwork, Wait } from "testcontainers";
import { HARNESS_LABEL, harnessOwner, natsImage, OWNER_LABEL, onFreeLoopbackPort } from "./nats.js";

/**
 * One NATS server started from a configuration file, for tests of authorization. NatsContainer
 * always adds `--user test --pass test`, which a config with an `authorization` block rejects,
 * so this is a plain container of the same image, waiting for the same log line.
 */
export interface ConfiguredNats {
  /** `nats://127.0.0.1:<port>`. */
  readonly url: string;
  stop(): Promise<void>;
}

const CONFIG_PATH = "/etc/nats/quorate.conf";

export async function startNatsWithConfig(options: {
  /** Path of the configuration file on the host; it is copied into the container. */
  configFile: string;
  /** Environment of the server: variables the configuration refers to (passwords). */
  env?: Record<string, string>;
  /** A Docker network to join as well, under `alias`: for members running in containers. */
  network?: { network: StartedNetwork; alias: string };
}): Promise<ConfiguredNats> {
  const content = readFileSync(options.configFile, "utf8");
  return onFreeLoopbackPort(async (port) => {
    let container = new GenericContainer(natsImage())
      .withCopyContentToContainer([{ content, target: CONFIG_PATH }])
      .withCommand(["--config", CONFIG_PATH])
      .withEnvironment(options.env ?? {})
      .withExposedPorts({ container: 4222, host: port })
      .withWaitStrategy(Wait.forLogMessage(/Server is ready/))
      .withLabels({ [HARNESS_LABEL]: "nats", [OWNER_LABEL]: harnessOwner() })
      .withStartupTimeout(60_000);
    if (options.network !== undefined) {
      container = container.withNetwork(options.network.network).withNetworkAliases(options.network.alias);
    }
    const started = await container.start();
    let stopped = false;
    return {
      url: `nats://127.0.0.1:${port}`,
      async stop() {
        if (stopped) return;
        stopped = true;
        await started.stop();
      },
    };
  });
}
