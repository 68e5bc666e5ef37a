// Package conformance runs the connectrpc conformance suite
// (connectrpc.com/conformance) through wsplex, in both of its roles: its
// test, conformance_test.go, builds the suite's runner and the programs
// under test, cmd/wsplexclient and cmd/wsplexserver, and runs every case
// their configurations (client-config.yaml, server-config.yaml) select.
// README.md says what is left out, and why.
//
// It is a module of its own, so that wsplex does not depend on the suite.
package conformance
