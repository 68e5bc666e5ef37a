import { create, toBinary } from "@bufbuild/protobuf";
import type { Any } from "@bufbuild/protobuf/wkt";

import { MAX_RESET_BODY } from "./frame.js";
import { Code, StatusSchema, type Status as StatusProto } from "./gen/wsplex/v1/wsplex_pb.js";
import { metadataFromProto, metadataToProto, toMetadata, type Metadata, type MetadataInit } from "./metadata.js";

export { Code };

/** Status is how a stream was refused or ended (SPEC.md §5). */
export interface Status {
  code: Code;
  message: string;
  details: Any[];
  trailers: Metadata;
}

/** What a WsplexError carries besides its code and message. */
export interface WsplexErrorInit {
  /** Messages that say more about the error, such as a google.rpc.RetryInfo. */
  details?: Any[];
  /** Metadata sent with the end of the stream, like HTTP trailers. */
  trailers?: MetadataInit;
  /** The peer's response metadata, for a refused open. */
  metadata?: MetadataInit;
  /** Whether the peer sent the status. */
  remote?: boolean;
}

/**
 * WsplexError is how a stream or session failed: the status the peer sent
 * (remote) or that this side ended it with. Thrown from a handler, it is
 * the status the stream ends with, details and trailers included.
 */
export class WsplexError extends Error {
  override name = "WsplexError";
  /** Messages that say more about the error, as google.protobuf.Any (unpack with anyUnpack). */
  readonly details: Any[];
  /** Metadata sent with the end of the stream. */
  readonly trailers: Metadata;
  /** The peer's response metadata, for a refused open. */
  readonly metadata: Metadata;
  /** Whether the peer sent the status. */
  readonly remote: boolean;

  constructor(
    /** The status code, such as Code.NOT_FOUND. */
    readonly code: Code,
    /** The status message, without the code. */
    readonly rawMessage: string,
    init: WsplexErrorInit = {},
  ) {
    super(rawMessage ? `${codeName(code)}: ${rawMessage}` : codeName(code));
    this.details = init.details ?? [];
    this.trailers = toMetadata(init.trailers);
    this.metadata = toMetadata(init.metadata);
    this.remote = init.remote ?? false;
  }
}

/** codeName turns Code.NOT_FOUND into "not found". */
export function codeName(code: Code): string {
  const name = Code[code];
  return name ? name.toLowerCase().replaceAll("_", " ") : `code ${code}`;
}

/** errorOf returns the error that reports st. */
export function errorOf(st: Status, init: { metadata?: Metadata; remote?: boolean } = {}): WsplexError {
  return new WsplexError(st.code, st.message, { details: st.details, trailers: st.trailers, ...init });
}

/** statusOf turns anything thrown into a status to end a stream with. */
export function statusOf(err: unknown): Status {
  if (err instanceof WsplexError) return { code: err.code, message: err.rawMessage, details: err.details, trailers: err.trailers };
  if (err instanceof Error && err.name === "AbortError") return status(Code.CANCELED, "canceled");
  return status(Code.UNKNOWN, err instanceof Error ? err.message : String(err));
}

/** status returns a Status without details or trailers. */
export function status(code: Code, message: string): Status {
  return { code, message, details: [], trailers: new Map() };
}

/**
 * statusFromProto returns the status p carries. A code this client does
 * not know reads as Code.UNKNOWN, its number kept in the message (SPEC.md §9).
 */
export function statusFromProto(p: StatusProto): Status {
  let { code, message } = p;
  if (Code[code] === undefined) {
    message = `unknown code ${code}: ${message}`;
    code = Code.UNKNOWN;
  }
  return { code, message, details: p.details, trailers: metadataFromProto(p.trailers) };
}

const OVERSIZE_NOTE = " [status over 16 KiB: details and trailers dropped]";

/**
 * encodeStatus returns the body of a reset frame, at most 16 KiB: a status
 * that would be larger loses its details and trailers, and its message is
 * cut on a UTF-8 boundary and says so (SPEC.md §5).
 */
export function encodeStatus(st: Status): Uint8Array {
  const { code } = st;
  let message = st.message;
  const body = toBinary(StatusSchema, create(StatusSchema, { code, message, details: st.details, trailers: metadataToProto(st.trailers) }));
  if (body.length <= MAX_RESET_BODY) return body;
  const enc = new TextEncoder();
  const bytes = enc.encode(message);
  let max = MAX_RESET_BODY - 64 - enc.encode(OVERSIZE_NOTE).length;
  if (bytes.length > max) {
    while ((bytes[max]! & 0xc0) === 0x80) max--; // not inside a character
    message = new TextDecoder().decode(bytes.subarray(0, max)) + "...";
  }
  return toBinary(StatusSchema, create(StatusSchema, { code, message: message + OVERSIZE_NOTE }));
}
