// Package wsplex multiplexes many named, protobuf-framed streams over one
// WebSocket connection. The API lives in its subpackages:
//
//   - [github.com/wsplex/wsplex/transport]: a net.Conn over a gorilla/websocket connection;
//   - [github.com/wsplex/wsplex/mux]: yamux sessions over it, with Dial and an http.Handler;
//   - [github.com/wsplex/wsplex/stream]: named streams, protobuf messages and a Router;
//   - [github.com/wsplex/wsplex/reconnect]: a client that keeps a session up, redialing with backoff.
//
// SPEC.md in the repository describes the wire protocol, docs/deploying.md
// how to run it behind proxies and load balancers; bench_test.go measures
// wsplex against the alternatives.
package wsplex
