package dist

import (
	"bytes"
	"fmt"
	"os"
	"os/signal"
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
