// Package topicbench compares wsplex's topics (package topic) with
// centrifuge: fan-out of one publish to many subscribers, on one node and
// on three nodes sharing a broker, and the memory an idle subscriber costs
// a server. It holds only benchmarks and their harness; it is a module of
// its own so that importing wsplex pulls neither centrifuge nor its
// brokers. See BENCHMARKS.md, "Topics: fan-out and memory vs centrifuge".
//
//	cd topicbench && go test -run '^$' -bench . -benchtime 1x -timeout 1h
package topicbench
