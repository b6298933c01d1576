package status

import (
	"testing"
	"time"
)

func TestStallTrackerStallsOnlyAPartitionThatWaitsUnmovedForTheStallTime(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	after := 20 * time.Second
	type obs struct {
		at        time.Duration // since t0
		committed int64
		lag       int64
		stalled   bool
		since     time.Duration // since t0
	}
	cases := []struct {
		name string
		obs  []obs
	}{
		{"idle at lag 0 is never stalled", []obs{
			{0, 10, 0, false, 0}, {time.Hour, 10, 0, false, time.Hour},
		}},
		{"a record after an hour idle starts the clock then", []obs{
			{0, 10, 0, false, 0}, {time.Hour, 10, 1, false, time.Hour},
			{time.Hour + 19*time.Second, 10, 1, false, time.Hour},
			{time.Hour + 20*time.Second, 10, 5, true, time.Hour},
		}},
		{"unmoved with lag for the stall time is stalled", []obs{
			{0, 10, 3, false, 0}, {10 * time.Second, 10, 3, false, 0}, {20 * time.Second, 10, 3, true, 0},
			{time.Minute, 10, 9, true, 0},
		}},
		{"moving resets the clock", []obs{
			{0, 10, 3, false, 0}, {15 * time.Second, 12, 3, false, 15 * time.Second},
			{30 * time.Second, 14, 3, false, 30 * time.Second}, {49 * time.Second, 14, 3, false, 30 * time.Second},
			{50 * time.Second, 14, 3, true, 30 * time.Second},
		}},
		{"draining ends a stall", []obs{
			{0, 10, 3, false, 0}, {25 * time.Second, 10, 3, true, 0}, {30 * time.Second, 13, 0, false, 30 * time.Second},
			{40 * time.Second, 13, 0, false, 40 * time.Second},
		}},
		{"an offset that moves back (a reset) is a move", []obs{
			{0, 10, 3, false, 0}, {25 * time.Second, 10, 3, true, 0}, {26 * time.Second, 5, 8, false, 26 * time.Second},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := newStallTracker()
			for i, o := range c.obs {
				since, stalled := tr.observe("clickhouse:shadow", 0, o.committed, o.lag, t0.Add(o.at), after)
				if stalled != o.stalled || !since.Equal(t0.Add(o.since)) {
					t.Fatalf("observation %d (at +%s, committed %d, lag %d): stalled=%v since +%s, want stalled=%v since +%s",
						i, o.at, o.committed, o.lag, stalled, since.Sub(t0), o.stalled, o.since)
				}
			}
		})
	}
}

func TestStallTrackerKeepsPartitionsAndStagesApart(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tr := newStallTracker()
	tr.observe("a", 0, 1, 1, t0, time.Second)
	tr.observe("a", 1, 1, 1, t0.Add(5*time.Second), time.Second)
	tr.observe("b", 0, 1, 1, t0.Add(9*time.Second), time.Second)
	if _, stalled := tr.observe("a", 0, 1, 1, t0.Add(10*time.Second), 10*time.Second); !stalled {
		t.Error("a/0, unmoved for 10s, is not stalled")
	}
	if _, stalled := tr.observe("a", 1, 1, 1, t0.Add(10*time.Second), 10*time.Second); stalled {
		t.Error("a/1, waiting for 5s, is stalled")
	}
	if _, stalled := tr.observe("b", 0, 1, 1, t0.Add(10*time.Second), 10*time.Second); stalled {
		t.Error("b/0, waiting for 1s, is stalled")
	}
}

func TestStallTrackerForgetsPartitionsThatAreGoneButKeepsAStageNotObserved(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tr := newStallTracker()
	tr.observe("a", 0, 1, 1, t0, time.Second)
	tr.observe("a", 1, 1, 1, t0, time.Second)
	tr.observe("b", 0, 1, 1, t0, time.Second)
	tr.keepOnly("a", []int{0})
	if len(tr.marks) != 2 {
		t.Fatalf("after keepOnly(a, [0]) the tracker holds %d marks, want 2 (a/0 and b/0)", len(tr.marks))
	}
	if since, _ := tr.observe("a", 1, 1, 1, t0.Add(time.Minute), time.Second); !since.Equal(t0.Add(time.Minute)) {
		t.Errorf("a/1 came back with its old mark: waiting since %s", since)
	}
	if _, stalled := tr.observe("b", 0, 1, 1, t0.Add(time.Minute), time.Second); !stalled {
		t.Error("b/0 lost its mark although its stage was not observed")
	}
}
