package producer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSummaryString(t *testing.T) {
	for _, tc := range []struct {
		s    Summary
		want string
	}{
		{Summary{Kind: "ratings", Sent: 100000, Acked: 100000, Elapsed: 1920 * time.Millisecond, Seed: 42},
			"acknowledged 100000 of 100000 ratings in 1.92s (52083/s), seed 42"},
		{Summary{Kind: "visits", Sent: 10, Acked: 7, Failed: 3, Elapsed: 2 * time.Second, Seed: -5},
			"acknowledged 7 of 10 visits in 2s (4/s), 3 failed, seed -5"},
		{Summary{Seed: 1}, "acknowledged 0 of 0 messages in 0s (0/s), seed 1"},
	} {
		if got := tc.s.String(); got != tc.want {
			t.Errorf("%+v: String() = %q, want %q", tc.s, got, tc.want)
		}
	}
}

func TestProgressPrinterRewritesOneLineOnATerminal(t *testing.T) {
	var out strings.Builder
	p := ProgressPrinter(&out, true, "ratings")
	p(Summary{Acked: 1000, Elapsed: time.Second})
	p(Summary{Acked: 3000, Elapsed: 2 * time.Second})
	p(Summary{Acked: 3500, Failed: 2, Elapsed: 2500 * time.Millisecond, Done: true})
	want := "\rratings: 1000 acked, 1000/s\x1b[K" +
		"\rratings: 3000 acked, 2000/s\x1b[K" +
		"\rratings: 3500 acked, 2 failed\x1b[K\n"
	if out.String() != want {
		t.Errorf("printed %q, want %q", out.String(), want)
	}
}

func TestProgressPrinterPrintsALineEveryFiveSecondsOtherwise(t *testing.T) {
	var out strings.Builder
	p := ProgressPrinter(&out, false, "visits")
	for i := 1; i <= 11; i++ {
		p(Summary{Acked: int64(i) * 10, Elapsed: time.Duration(i) * time.Second})
	}
	p(Summary{Acked: 115, Elapsed: 11500 * time.Millisecond, Done: true})
	want := "visits: 50 acked, 10/s\nvisits: 100 acked, 10/s\n"
	if out.String() != want {
		t.Errorf("printed %q, want %q", out.String(), want)
	}
}

func TestIsTerminalTellsCharacterDevicesFromFiles(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(f) {
		t.Error("IsTerminal(regular file) = true")
	}
	if f, err := os.Open(os.DevNull); err == nil {
		defer f.Close()
		if !IsTerminal(f) { // a character device, as a terminal is
			t.Errorf("IsTerminal(%s) = false", os.DevNull)
		}
	}
}
