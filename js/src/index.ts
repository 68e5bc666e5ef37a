// @wsplex/client: the wsplex wire protocol (SPEC.md) for browsers and Node.
export { connect, tokenProtocol, Session, SUBPROTOCOL } from "./session.js";
export type { ConnectOptions, OpenOptions, SessionOptions, WebSocketLike, WebSocketConstructor } from "./session.js";
export { Stream } from "./stream.js";
export { reconnect, Reconnector } from "./reconnect.js";
export type { OnlineTarget, ReconnectOptions, ReconnectState } from "./reconnect.js";
export { Publisher, Subscription } from "./topic.js";
export type { Position, PublisherOptions, SubscribeOptions, TopicEvent } from "./topic.js";
export { WsplexError, Code, codeName } from "./errors.js";
export type { Status, WsplexErrorInit } from "./errors.js";
export type { Metadata, MetadataInit } from "./metadata.js";
export type { StreamHandler } from "./router.js";
export * as wsplexv1 from "./gen/wsplex/v1/wsplex_pb.js";
