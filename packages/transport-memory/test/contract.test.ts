import { describeTransportContract } from "../../../test/contract/transport-contract.js";
import { MemoryNetwork } from "../src/index.js";

describeTransportContract("memory transport", async ({ cluster, group, members, maxFrameBytes }) => {
  const network = new MemoryNetwork({ maxFrameBytes });
  const transports = members.map((self) => network.connect({ cluster, group, self }));
  return {
    transports,
    injectRaw: (sender, bytes, target) => network.injectRaw(cluster, group, sender, bytes, target),
    // Auto delivery runs in the next macrotask; two turns cover frames sent from handlers.
    settle: async () => {
      for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
    },
    close: async () => {
      await Promise.all(transports.map((t) => t.close()));
    },
  };
});
