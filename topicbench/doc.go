// Package topicbench compares wsplex's topics (package topic) with
// centrifuge: fan-out of one publish to many subscribers, on one node and
// on three nodes sharing a broker (wsplexnats on NATS JetStream against
// centrifuge's Redis broker), and the memory an idle subscriber costs a
// server. It holds only benchmarks, their harness and its smoke tests; it
// is a module of its own so that importing wsplex pulls neither
// centrifuge, nor nats, nor redis clients. Run, with redis-server
// installed:
//
//	cd topicbench && go test -run '^$' -bench . -benchtime 1x -timeout 1h
//
// The run ends with a table of each metric's median per system and their
// ratio. BENCHMARKS.md, "Topics: fan-out and memory vs centrifuge", says
// what each figure means and what the last run gave.
package topicbench
