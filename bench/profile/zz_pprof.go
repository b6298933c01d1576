//go:build benchpprof

// This file is not part of any package here: bench/run.sh lays it over
// cmd/domination with `go build -overlay` to make bin/domination-pprof, a
// variant of the product binary that profiles itself, without changing the
// product's source. With BENCH_CPUPROFILE set it records a CPU profile from
// start-up; SIGUSR1 stops it, writes a heap profile to BENCH_HEAPPROFILE
// (if set) and creates BENCH_CPUPROFILE.done. With BENCH_PPROF_ADDR set it
// also serves net/http/pprof there, for looking at a run by hand.

package main

import (
	"net/http"
	_ "net/http/pprof" // served on BENCH_PPROF_ADDR
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
)

func init() {
	if addr := os.Getenv("BENCH_PPROF_ADDR"); addr != "" {
		go func() { _ = http.ListenAndServe(addr, nil) }()
	}
	path := os.Getenv("BENCH_CPUPROFILE")
	if path == "" {
		return
	}
	f, err := os.Create(path)
	if err != nil {
		return
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGUSR1)
	go func() {
		<-stop
		pprof.StopCPUProfile()
		f.Close()
		if hp := os.Getenv("BENCH_HEAPPROFILE"); hp != "" {
			if h, err := os.Create(hp); err == nil {
				_ = pprof.Lookup("heap").WriteTo(h, 0)
				h.Close()
			}
		}
		_ = os.WriteFile(path+".done", nil, 0o644)
	}()
}
