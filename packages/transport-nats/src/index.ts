export type { Msg, MsgHdrs, NatsConnection } from "@nats-io/transport-node";
export { connectNats, type NatsConnectOptions, type NatsTlsOptions } from "./connect.js";
export {
  ColocatedTransports,
  createNatsTransport,
  fromMsgHdrs,
  NatsTransport,
  type NatsTransportOptions,
  type NatsTransportStats,
  toMsgHdrs,
} from "./transport.js";
