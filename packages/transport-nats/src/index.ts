export type { Msg, MsgHdrs, NatsConnection } from "@nats-io/transport-node";
export { connectNats, type NatsConnectOptions, type NatsTlsOptions } from "./connect.js";
export {
  createNatsTransport,
  NatsTransport,
  type NatsTransportOptions,
  type NatsTransportStats,
} from "./transport.js";
