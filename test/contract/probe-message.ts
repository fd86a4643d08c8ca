import { type BodiesOf, bytes, object, optional, registerMessages, uint } from "../../packages/core/src/index.js";

/**
 * A message type of no protocol, for tests of the codec, the host kit and the transports: they
 * check how frames travel, not what a protocol says, so they need no protocol package loaded.
 */
export const probeMessageSchemas = {
  "test.probe": object({ seq: uint, data: optional(bytes) }),
} as const;

registerMessages(probeMessageSchemas);

type ProbeBodies = BodiesOf<typeof probeMessageSchemas>;
declare module "../../packages/core/src/index.js" {
  interface MessageMap extends ProbeBodies {}
}
