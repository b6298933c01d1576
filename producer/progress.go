package producer

import (
	"fmt"
	"io"
	"os"
	"time"
)

// ProgressPrinter returns a Progress that shows a run's progress on w as
// "<what>: <acked> acked, <rate>/s", the rate being over the last
// interval. On a terminal it rewrites one line with \r every call and ends
// it with a newline at the end; otherwise it prints a line every 5 s and
// nothing at the end. Either way the caller prints Summary.String() after
// the run. Write errors are ignored.
func ProgressPrinter(w io.Writer, isTerminal bool, what string) Progress {
	every := 5 * time.Second
	if isTerminal {
		every = 0
	}
	var (
		last      time.Duration
		lastAcked int64
		printed   bool
	)
	return func(s Summary) {
		if s.Done {
			if isTerminal && printed {
				fmt.Fprintf(w, "\r%s: %d acked, %d failed\x1b[K\n", what, s.Acked, s.Failed)
			}
			return
		}
		if s.Elapsed-last < every {
			return
		}
		rate := 0.0
		if d := s.Elapsed - last; d > 0 {
			rate = float64(s.Acked-lastAcked) / d.Seconds()
		}
		last, lastAcked, printed = s.Elapsed, s.Acked, true
		line := fmt.Sprintf("%s: %d acked, %.0f/s", what, s.Acked, rate)
		if s.Failed > 0 {
			line += fmt.Sprintf(", %d failed", s.Failed)
		}
		if isTerminal {
			fmt.Fprintf(w, "\r%s\x1b[K", line)
		} else {
			fmt.Fprintln(w, line)
		}
	}
}

// IsTerminal reports whether f is a character device, such as a terminal,
// where ProgressPrinter may rewrite its line.
func IsTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
