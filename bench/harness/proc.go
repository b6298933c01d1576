package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat;
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// live holds every contender process group still running, so a signal
// to the harness can end them (see killAll).
var live = struct {
	sync.Mutex
	procs map[*proc]bool
}{procs: map[*proc]bool{}}

// proc is one contender process, in its own process group so that it and
// its children are measured and stopped together.
type proc struct {
	name   string
	cmd    *exec.Cmd
	log    *os.File
	done   chan struct{}
	err    error
	start  time.Time
	sample *sampler
}

// spawn starts argv with extra environment variables, output to logPath,
// and starts sampling its process tree.
func spawn(name string, argv []string, env []string, logPath string) (*proc, error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, err
	}
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: f, done: make(chan struct{}), start: time.Now()}
	p.sample = newSampler(cmd.Process.Pid)
	live.Lock()
	live.procs[p] = true
	live.Unlock()
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	go p.sample.run(p.done)
	return p, nil
}

// exited reports whether the process has ended, and how.
func (p *proc) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// stop sends SIGTERM to the process group, then SIGKILL after grace.
func (p *proc) stop(grace time.Duration) {
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
	// Children that outlived their parent are still in the group.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	p.log.Close()
	live.Lock()
	delete(live.procs, p)
	live.Unlock()
}

// profiled asks a bin/domination-pprof process to finish its profiles
// (SIGUSR1) and waits for them, at most 10s.
func (p *proc) profiled(cpuPath string) error {
	if err := p.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		return err
	}
	for range 100 {
		if _, err := os.Stat(cpuPath + ".done"); err == nil {
			return os.Remove(cpuPath + ".done")
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s wrote no profile to %s", p.name, cpuPath)
}

// tail returns the last n lines of the process's log, for error reports.
func (p *proc) tail(n int) string {
	b, err := os.ReadFile(p.log.Name())
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// killAll ends every contender still running (the harness is stopping).
func killAll() {
	live.Lock()
	defer live.Unlock()
	for p := range live.procs {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
}

// usage is a process tree's resource use at one moment.
type usage struct {
	at time.Time
	// cpu is user+system seconds of every process seen in the tree so far
	// (an exited child keeps its last reading).
	cpu float64
	// rss is the sum of VmRSS over the tree's live processes.
	rss int64
}

// sampler polls /proc for a process tree's CPU time and resident memory.
type sampler struct {
	root     int
	interval time.Duration

	mu      sync.Mutex
	last    usage
	peakRSS int64 // max of the sampled tree RSS
	peakHWM int64 // max VmHWM of any process in the tree
	cpuBy   map[int]float64
}

func newSampler(root int) *sampler {
	return &sampler{root: root, interval: 50 * time.Millisecond, cpuBy: map[int]float64{}}
}

func (s *sampler) run(done <-chan struct{}) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		s.poll()
		select {
		case <-done:
			return
		case <-t.C:
		}
	}
}

// now samples immediately and returns the reading.
func (s *sampler) now() usage {
	s.poll()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// peak returns the largest resident set seen: the sampled tree sum or a
// process's own high-water mark, whichever is larger.
func (s *sampler) peak() int64 {
	s.poll()
	s.mu.Lock()
	defer s.mu.Unlock()
	return max(s.peakRSS, s.peakHWM)
}

func (s *sampler) poll() {
	pids := tree(s.root)
	var rss, hwm int64
	cpu := map[int]float64{}
	for _, pid := range pids {
		if c, ok := cpuSeconds(pid); ok {
			cpu[pid] = c
		}
		r, h := memory(pid)
		rss += r
		hwm = max(hwm, h)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for pid, c := range cpu {
		s.cpuBy[pid] = max(s.cpuBy[pid], c)
	}
	var total float64
	for _, c := range s.cpuBy {
		total += c
	}
	s.last = usage{at: time.Now(), cpu: total, rss: rss}
	s.peakRSS = max(s.peakRSS, rss)
	s.peakHWM = max(s.peakHWM, hwm)
}

// tree returns root and its descendants.
func tree(root int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return []int{root}
	}
	children := map[int][]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := statFields(pid); len(f) > 1 {
			ppid, _ := strconv.Atoi(f[1])
			children[ppid] = append(children[ppid], pid)
		}
	}
	out := []int{root}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// statFields returns the fields of /proc/<pid>/stat after the command
// name: [0] state, [1] ppid, ..., [11] utime, [12] stime.
func statFields(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

func cpuSeconds(pid int) (float64, bool) {
	f := statFields(pid)
	if len(f) < 13 {
		return 0, false
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return float64(u+s) / clockTicks, true
}

// memory returns VmRSS and VmHWM of a process, in bytes.
func memory(pid int) (rss, hwm int64) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "VmRSS:"):
			rss = kib(line)
		case strings.HasPrefix(line, "VmHWM:"):
			hwm = kib(line)
		}
	}
	return rss, hwm
}

func kib(line string) int64 {
	f := strings.Fields(line)
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.ParseInt(f[1], 10, 64)
	return n << 10
}

// machine is a reading of the whole machine's CPU time, and of the
// processes that are not the contender: the broker, ClickHouse and the
// harness itself. What the machine spent beyond those and the contender is
// background load (other programs), which makes a run less trustworthy.
type machine struct {
	busy     float64 // seconds of non-idle CPU since boot, all cores
	services float64 // broker + ClickHouse + harness CPU seconds
}

// servicePIDs are the processes scripts/services started for the topology
// (read from their pid files under dir; none under Docker): on a single
// node the broker and ClickHouse, on a cluster every member cluster.sh
// runs (brokers, ClickHouse replicas, ZooKeeper); then the harness.
func servicePIDs(dir, topology string) []int {
	files := []string{filepath.Join(dir, "kafka", "kafka.pid"), filepath.Join(dir, "clickhouse", "clickhouse.pid")}
	if topology == "cluster" {
		files, _ = filepath.Glob(filepath.Join(dir, "cluster", "*", "pid"))
	}
	var pids []int
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			pids = append(pids, pid)
		}
	}
	return append(pids, os.Getpid())
}

func readMachine(services []int) machine {
	var m machine
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line)
		for i, v := range f[1:] {
			n, _ := strconv.ParseFloat(v, 64)
			// user nice system idle iowait irq softirq steal guest guest_nice
			if i == 3 || i == 4 || i >= 8 {
				continue
			}
			m.busy += n / clockTicks
		}
	}
	for _, pid := range services {
		if c, ok := cpuSeconds(pid); ok {
			m.services += c
		}
	}
	return m
}
