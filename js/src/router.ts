import type { Stream } from "./stream.js";

/** StreamHandler serves a stream the server opened; see Session.handle. */
export type StreamHandler = (stream: Stream) => void | Promise<void>;

/** Options of Session.handle. */
export interface HandleOptions {
  /**
   * Whether the handler answers the open itself, as Go's stream.Answerer
   * does: the stream answers Code.OK with its responseMetadata on the
   * handler's first write, closeWrite or respond, or when the handler
   * returns; a handler that throws before that answers with its status
   * (SPEC.md §13.3). Default false: the answer (Code.OK, no metadata)
   * leaves before the handler runs.
   */
  answersOpen?: boolean;
}

interface Route {
  pattern: string;
  segments: string[];
  prefix: boolean; // pattern ends in "/": matches every name below it
  handler: StreamHandler;
  options: HandleOptions;
}

/**
 * Router matches stream names against patterns in the style of Go's
 * http.ServeMux, which the Go server uses: "{name}" matches one segment,
 * "{name...}" the rest of the name, a trailing "/" every name below it.
 */
export class Router {
  private routes: Route[] = [];

  add(pattern: string, handler: StreamHandler, options: HandleOptions = {}): void {
    if (!pattern.startsWith("/")) throw new Error(`wsplex: pattern ${pattern} must start with "/"`);
    if (this.routes.some((r) => r.pattern === pattern)) throw new Error(`wsplex: pattern ${pattern} registered twice`);
    const prefix = pattern.endsWith("/");
    const segments = pattern.slice(1, prefix ? -1 : undefined).split("/");
    if (segments.length === 1 && segments[0] === "") segments.length = 0;
    segments.forEach((seg, i) => {
      if (seg.endsWith("...}") && i !== segments.length - 1) throw new Error(`wsplex: ${seg} must end pattern ${pattern}`);
    });
    this.routes.push({ pattern, segments, prefix, handler, options });
  }

  /** match returns the most specific route for name and its wildcard values. */
  /** The number of patterns. */
  get size(): number {
    return this.routes.length;
  }

  match(name: string): { handler: StreamHandler; options: HandleOptions; params: Record<string, string> } | undefined {
    if (!name.startsWith("/")) return undefined;
    const parts = name.slice(1).split("/");
    let best: { route: Route; params: Record<string, string>; score: number[] } | undefined;
    for (const route of this.routes) {
      const m = matchRoute(route, parts);
      if (!m) continue;
      if (!best || compare(m.score, best.score) > 0) best = { route, params: m.params, score: m.score };
    }
    return best && { handler: best.route.handler, options: best.route.options, params: best.params };
  }
}

/** matchRoute matches one route; score ranks matches: literals first, then length. */
function matchRoute(route: Route, parts: string[]): { params: Record<string, string>; score: number[] } | undefined {
  const params: Record<string, string> = {};
  let literals = 0;
  const segs = route.segments;
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i]!;
    if (seg.startsWith("{") && seg.endsWith("...}")) {
      if (i >= parts.length) return undefined;
      params[seg.slice(1, -4)] = parts.slice(i).join("/");
      return { params, score: [literals, 0, segs.length] };
    }
    if (i >= parts.length) return undefined;
    if (seg.startsWith("{") && seg.endsWith("}")) {
      if (parts[i] === "") return undefined;
      params[seg.slice(1, -1)] = parts[i]!;
    } else if (seg === parts[i]) {
      literals++;
    } else {
      return undefined;
    }
  }
  if (route.prefix) {
    return parts.length > segs.length ? { params, score: [literals, 0, segs.length] } : undefined;
  }
  return parts.length === segs.length ? { params, score: [literals, 1, segs.length] } : undefined;
}

function compare(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}
