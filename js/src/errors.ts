import { create, toBinary } from "@bufbuild/protobuf";

import { MAX_RESET_BODY } from "./frame.js";
import { Code, StatusSchema } from "./gen/wsplex/v1/wsplex_pb.js";
import type { Metadata } from "./metadata.js";

export { Code };

/**
 * WsplexError is how a stream or session failed: the status code and
 * message the peer sent (remote) or that this side ended it with.
 */
export class WsplexError extends Error {
  override name = "WsplexError";

  constructor(
    /** The status code, such as Code.NOT_FOUND. */
    readonly code: Code,
    /** The status message, without the code. */
    readonly rawMessage: string,
    /** The peer's response metadata, for a refused open. */
    readonly metadata: Metadata = new Map(),
    /** Whether the peer sent the status. */
    readonly remote = false,
  ) {
    super(rawMessage ? `${codeName(code)}: ${rawMessage}` : codeName(code));
  }
}

/** codeName turns Code.NOT_FOUND into "not found". */
export function codeName(code: Code): string {
  const name = Code[code];
  return name ? name.toLowerCase().replaceAll("_", " ") : `code ${code}`;
}

/** errorOf turns anything thrown into a status to end a stream with. */
export function statusOf(err: unknown): { code: Code; message: string } {
  if (err instanceof WsplexError) return { code: err.code, message: err.rawMessage };
  if (err instanceof Error && err.name === "AbortError") return { code: Code.CANCELED, message: "canceled" };
  return { code: Code.UNKNOWN, message: err instanceof Error ? err.message : String(err) };
}

const OVERSIZE_NOTE = " [status over 16 KiB: details and trailers dropped]";

/**
 * encodeStatus returns the body of a reset frame, at most 16 KiB: a status
 * that would be larger loses its details and trailers, and its message is
 * cut on a UTF-8 boundary and says so (SPEC.md §5).
 */
export function encodeStatus(code: Code, message: string): Uint8Array {
  const body = toBinary(StatusSchema, create(StatusSchema, { code, message }));
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
