// Package e2e proves domination end to end against the real services: it
// builds the binary, runs `domination migrate`, `worker`, `produce` and
// `query` as a user would, each test with its own ClickHouse database, topics
// and consumer groups, and checks what lands in ClickHouse and the
// dead-letter topic against what was sent. Workers run as child processes so
// that a test can kill one with SIGKILL.
//
// The tests need Kafka and ClickHouse (`make up`); they fail, never skip,
// without them.
package e2e
