package cli_test

import (
	"strings"
	"testing"

	"github.com/domination/domination/internal/testenv"
)

func TestDLQRefusesABadRequestBeforeConnecting(t *testing.T) {
	broker := "--kafka-brokers=" + testenv.ClosedAddr(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"dlq", "replay", broker}, "say what to replay with --reason, --since, --until or --offset, or --all"},
		{[]string{"dlq", "replay", "--all", "--reason", "out_of_range", broker}, "--all selects everything"},
		{[]string{"dlq", "replay", "--offset", "7", broker}, `offset range "7": no '/'`},
		{[]string{"dlq", "replay", "--since", "1h", "--until", "2h", broker}, "must be after since"},
		{[]string{"dlq", "list", "--by", "minute", broker}, `--by "minute" is not one of record, reason`},
		{[]string{"dlq", "list", "--format", "xml", broker}, `unknown format "xml"`},
		{[]string{"dlq", "list", "--since", "yesterday", broker}, "--since: parse time"},
		{[]string{"dlq", "list", "--topic", "a b", broker}, "not a valid Kafka topic name"},
		{[]string{"dlq", "show", "--offset", "0/1-5", broker}, "want one record, PARTITION/OFFSET"},
		{[]string{"dlq", "show", broker}, `"offset" not set`},
	} {
		line := oneErrorLine(t, run(t, tc.args...))
		if !strings.Contains(line, tc.want) {
			t.Errorf("domination %s: %q, want it to contain %q", strings.Join(tc.args, " "), line, tc.want)
		}
	}
}

func TestDLQListFailsClearlyWhenKafkaIsDown(t *testing.T) {
	line := oneErrorLine(t, run(t, "dlq", "list", "--kafka-brokers", testenv.ClosedAddr(t), "--timeout", "20s"))
	if !strings.Contains(line, "dlq list") && !strings.Contains(line, "describe topic") {
		t.Errorf("error %q does not say what failed", line)
	}
}

func TestDLQHelpExplainsReplayAndItsIdempotence(t *testing.T) {
	r := run(t, "dlq", "--help")
	if r.code != 0 {
		t.Fatalf("dlq --help exited %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{"list", "show", "replay", "dlq.replayed-from", "ReplacingMergeTree"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("dlq --help does not mention %s:\n%s", want, r.stdout)
		}
	}
}
