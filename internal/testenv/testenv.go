// Package testenv gives integration tests the addresses of the real Kafka
// broker and ClickHouse server, and names that no other test uses.
//
// Addresses come from the environment (DOMINATION_TEST_KAFKA_BROKERS,
// DOMINATION_TEST_CLICKHOUSE_ADDR) and default to the ports that
// scripts/services start. A test that needs a service and cannot reach it
// fails; it never skips, so a run without services cannot pass by accident.
// `make test` starts the services first.
package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Default addresses, as started by scripts/services.
const (
	DefaultKafkaBrokers   = "127.0.0.1:9092"
	DefaultClickHouseAddr = "127.0.0.1:9000"
)

// KafkaBrokers returns the broker addresses for tests, failing t when none
// answers.
func KafkaBrokers(t testing.TB) []string {
	t.Helper()
	brokers := strings.Split(env("DOMINATION_TEST_KAFKA_BROKERS", DefaultKafkaBrokers), ",")
	mustDial(t, "Kafka", brokers[0])
	return brokers
}

// ClickHouseAddr returns the native-protocol address of ClickHouse for tests,
// failing t when it does not answer.
func ClickHouseAddr(t testing.TB) string {
	t.Helper()
	addr := env("DOMINATION_TEST_CLICKHOUSE_ADDR", DefaultClickHouseAddr)
	mustDial(t, "ClickHouse", addr)
	return addr
}

var unsafeChars = regexp.MustCompile(`[^a-z0-9_]+`)

// Name returns a name unique to this test run for a topic, consumer group or
// database: the prefix, the test's name folded to [a-z0-9_], and random hex.
// It is a valid ClickHouse identifier and Kafka topic name.
func Name(t testing.TB, prefix string) string {
	t.Helper()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("random name: %v", err)
	}
	base := unsafeChars.ReplaceAllString(strings.ToLower(t.Name()), "_")
	if len(base) > 40 {
		base = base[len(base)-40:]
	}
	return strings.Trim(prefix+"_"+base, "_") + "_" + hex.EncodeToString(b[:])
}

func mustDial(t testing.TB, what, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		t.Fatalf("%s is not reachable at %s (%v): start it with `make up`, or set the address in the environment", what, addr, err)
	}
	_ = c.Close()
}

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// WaitFor polls ok until it holds, failing t with what after within. It
// polls often at first and then every 200ms, so a condition that queries a
// service does not hammer it.
func WaitFor(t testing.TB, what string, within time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	pause := 5 * time.Millisecond
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(pause)
		pause = min(2*pause, 200*time.Millisecond)
	}
}
