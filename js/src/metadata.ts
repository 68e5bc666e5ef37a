import { create } from "@bufbuild/protobuf";
import { ValuesSchema, type Values } from "./gen/wsplex/v1/wsplex_pb.js";

/**
 * Metadata travels with an open request and its response, like HTTP
 * headers: each lowercase key has a list of values.
 */
export type Metadata = Map<string, string[]>;

/** MetadataInit is what the API accepts as metadata. */
export type MetadataInit = Metadata | Record<string, string | string[]>;

export function toMetadata(init: MetadataInit | undefined): Metadata {
  const md: Metadata = new Map();
  if (!init) return md;
  const entries = init instanceof Map ? init.entries() : Object.entries(init);
  for (const [k, v] of entries) {
    const key = k.toLowerCase();
    md.set(key, [...(md.get(key) ?? []), ...(Array.isArray(v) ? v : [v])]);
  }
  return md;
}

export function metadataToProto(md: Metadata): { [key: string]: Values } {
  const out: { [key: string]: Values } = {};
  for (const [k, v] of md) out[k] = create(ValuesSchema, { values: v });
  return out;
}

export function metadataFromProto(p: { [key: string]: Values }): Metadata {
  const md: Metadata = new Map();
  for (const [k, v] of Object.entries(p)) md.set(k, [...v.values]);
  return md;
}
