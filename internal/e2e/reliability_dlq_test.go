//go:build reliability

package e2e

import (
	"fmt"
	"testing"
)

// TestReliabilityDLQReplay replays dead-lettered ratings twice, with the
// worker SIGKILLed right after the first replay, and proves each rating
// counted once. Its line has the suite's form with the replayed count:
//
//	scenario=dlq-replay produced=N replayed=N landed=N missing=0 duplicated=0
func TestReliabilityDLQReplay(t *testing.T) {
	e := newEnv(t)
	o := e.dlqReplayScenario(10000, true)
	printLine(t, o.line())
	if o.report.Missing != 0 || o.report.Duplicated != 0 || o.report.Landed != o.produced {
		t.Errorf("dlq-replay: %s", o.report)
	}
}

// printLine prints a scenario's line and records it in the report file as
// printScenario does, for a line that is not a verify.Report's.
func printLine(t *testing.T, line string) {
	t.Helper()
	fmt.Println(line)
	t.Log(line)
	report(t, line)
}
