package dist

import (
	"bytes"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const launchWorkerEnv = "CLIPCAP_DIST_LAUNCH_WORKER"

// TestLaunchWorker is the worker the launcher tests start: rank 1 exits
// with status 3 when told to, the others wait for a signal and report it.
func TestLaunchWorker(t *testing.T) {
	mode := os.Getenv(launchWorkerEnv)
	if mode == "" {
		t.Skip("helper process for the launcher tests")
	}
	env, ok, err := FromEnv(os.Getenv)
	if err != nil || !ok {
		fmt.Fprintln(os.Stderr, "no job:", err)
		os.Exit(2)
	}
	if mode == "pin" {
		cpus, err := PinFromEnv()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(5)
		}
		fmt.Fprintf(os.Stderr, "rank %d pinned %v, allowed %v, gomaxprocs %d\n", env.Rank, cpus, allowedCPUs(), runtime.GOMAXPROCS(0))
		os.Exit(0)
	}
	if mode == "fail" && env.Rank == 1 {
		time.Sleep(200 * time.Millisecond)
		os.Exit(3)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	fmt.Fprintf(os.Stderr, "rank %d ready, threads %s\n", env.Rank, os.Getenv("OMP_NUM_THREADS"))
	select {
	case s := <-sigs:
		fmt.Fprintf(os.Stderr, "rank %d got %v\n", env.Rank, s)
		os.Exit(0)
	case <-time.After(time.Minute):
		os.Exit(4)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func testLaunch(mode string, started func(rank, pid int)) (Launch, *lockedBuffer) {
	out := &lockedBuffer{}
	return Launch{N: 3, Cmd: []string{os.Args[0], "-test.run=^TestLaunchWorker$"}, Env: append(os.Environ(), launchWorkerEnv+"="+mode),
		Threads: 2, Stderr: out, Grace: 5 * time.Second, Started: started}, out
}

// One worker fails: the others are stopped and the launcher names it.
func TestLaunchStopsTheRestWhenOneFails(t *testing.T) {
	l, out := testLaunch("fail", nil)
	begin := time.Now()
	err := l.Run()
	if err == nil || err.Error() != "worker rank 1 of 3 exited with status 3" {
		t.Fatalf("error %v\n%s", err, out)
	}
	if d := time.Since(begin); d > 30*time.Second {
		t.Errorf("took %v", d)
	}
	if !strings.Contains(out.String(), "stopping the other 2") {
		t.Errorf("output:\n%s", out)
	}
}

// A signal to the launcher reaches every worker once; workers that then
// exit cleanly make a clean launch. Each worker got the thread count.
func TestLaunchForwardsSignals(t *testing.T) {
	var once sync.Once
	var out *lockedBuffer
	var l Launch
	l, out = testLaunch("wait", func(rank, pid int) {
		if rank == 2 {
			once.Do(func() {
				go func() {
					// Wait until every worker has its handler installed.
					for strings.Count(out.String(), "ready") < 3 {
						time.Sleep(10 * time.Millisecond)
					}
					syscall.Kill(os.Getpid(), syscall.SIGTERM)
				}()
			})
		}
	})
	if err := l.Run(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for r := 0; r < 3; r++ {
		if !strings.Contains(out.String(), fmt.Sprintf("rank %d ready, threads 2", r)) || strings.Count(out.String(), fmt.Sprintf("rank %d got terminated", r)) != 1 {
			t.Errorf("rank %d did not get the thread count and exactly one SIGTERM:\n%s", r, out)
		}
	}
}

// Pinned workers each get their own block of the launcher's CPUs, and a
// worker that applies it runs only there, with GOMAXPROCS to match.
func TestLaunchPinsWorkers(t *testing.T) {
	cpus := allowedCPUs()
	if len(cpus) < 2 {
		t.Skipf("%d CPU(s): nothing to split", len(cpus))
	}
	out := &lockedBuffer{}
	l := Launch{N: 2, Cmd: []string{os.Args[0], "-test.run=^TestLaunchWorker$"}, Env: append(os.Environ(), launchWorkerEnv+"=pin"),
		Threads: 1, Pin: true, Stderr: out}
	if err := l.Run(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for r := 0; r < 2; r++ {
		want := fmt.Sprintf("rank %d pinned [%d], allowed [%d], gomaxprocs 1", r, cpus[r], cpus[r])
		if !strings.Contains(out.String(), want) {
			t.Errorf("want %q in:\n%s", want, out)
		}
	}
	// More workers than CPUs: no pinning at all rather than sharing.
	out = &lockedBuffer{}
	l.N, l.Stderr = len(cpus)+1, out
	if err := l.Run(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if strings.Count(out.String(), "pinned [], ") != l.N {
		t.Errorf("workers pinned with %d workers on %d CPUs:\n%s", l.N, len(cpus), out)
	}
}

func TestPinFromEnvRejectsBadCPUs(t *testing.T) {
	t.Setenv(WorkerCPUsEnv, "0,x")
	if _, err := PinFromEnv(); err == nil || !strings.Contains(err.Error(), WorkerCPUsEnv+`="0,x": "x" is not a CPU number`) {
		t.Fatalf("error %v", err)
	}
}
