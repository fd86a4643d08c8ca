import { getContainerRuntimeClient, ImageName } from "testcontainers";
import { harnessOwner, natsImage, OWNER_ENV, removeHarnessContainers } from "./nats.js";

/**
 * Global setup of the integration project. Integration tests never skip: without a Docker
 * engine (or without the NATS image) the run fails here, with what to do about it.
 */
export default async function setup(): Promise<() => Promise<void>> {
  // Ryuk's image comes from Docker Hub; the harness labels and removes its containers itself.
  process.env.TESTCONTAINERS_RYUK_DISABLED ??= "true";
  // Workers are forked after this runs, so they inherit the owner and label with it.
  process.env[OWNER_ENV] ??= String(process.pid);
  const owner = harnessOwner();

  let client: Awaited<ReturnType<typeof getContainerRuntimeClient>>;
  try {
    client = await getContainerRuntimeClient();
  } catch (err) {
    throw new Error(
      "Docker is required for integration tests, and no Docker engine is reachable. Start dockerd " +
        "(e.g. `dockerd > /tmp/dockerd.log 2>&1 &`, or `systemctl start docker`) or set DOCKER_HOST, then rerun. " +
        `Cause: ${err instanceof Error ? err.message : String(err)}`,
    );
  }

  const image = ImageName.fromString(natsImage());
  if (!(await client.image.exists(image))) {
    try {
      // An unreachable registry can hang instead of failing; bound it.
      await Promise.race([
        client.image.pull(image),
        new Promise((_, reject) => setTimeout(() => reject(new Error("pull timed out after 90 s")), 90_000).unref()),
      ]);
    } catch (err) {
      throw new Error(
        `The NATS image ${image.string} is not present and cannot be pulled. Without Docker Hub, build a ` +
          "local one with `deploy/nats-local/build.sh quorate/nats-local:latest` and set " +
          `QUORATE_NATS_IMAGE=quorate/nats-local:latest. Cause: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }

  // Leftovers of runs that died before their teardown.
  await removeHarnessContainers();

  return async () => {
    const removed = await removeHarnessContainers(owner);
    if (removed > 0) console.warn(`[harness] removed ${removed} NATS container(s) a test left running`);
  };
}
