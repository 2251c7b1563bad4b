package dist

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

// Launch is the single-node launcher (clipcap train --nproc-per-node N):
// it runs N copies of a command on loopback rendezvous, as torchrun does.
type Launch struct {
	N       int
	Cmd     []string // program and arguments of every worker
	Env     []string // base environment (os.Environ() when nil)
	Threads int      // CPU threads per worker (OMP/OpenBLAS/MKL); 0 = leave as is
	// Pin gives worker r the r-th block of Threads CPUs of the launcher's
	// own CPU set (see PinFromEnv), as Intel's PyTorch CPU launcher does:
	// a worker's threads then keep their core and its caches instead of
	// migrating among the others'. Skipped when the set is too small.
	Pin    bool
	Port   int       // MASTER_PORT; 0 = a free port
	Stderr io.Writer // workers' stdout and stderr, and the launcher's messages
	// Grace is how long the others get to exit after SIGTERM when one
	// worker failed, before SIGKILL (default 10 s).
	Grace time.Duration
	// Started, when set, is told each worker's pid (tests kill one).
	Started func(rank, pid int)
}

type exit struct {
	rank int
	err  error
}

// Run starts the workers and waits for them. SIGINT, SIGTERM and SIGHUP
// sent to the launcher are forwarded to every worker (which checkpoint and
// stop together). When a worker fails, the others are stopped and the
// error names the failed rank; the launcher fails when any worker did.
func (l Launch) Run() error {
	if l.N < 1 {
		return fmt.Errorf("--nproc-per-node: must be at least 1, got %d", l.N)
	}
	if l.Stderr == nil {
		l.Stderr = os.Stderr
	}
	if l.Grace <= 0 {
		l.Grace = 10 * time.Second
	}
	port := l.Port
	if port == 0 {
		var err error
		if port, err = freePort(); err != nil {
			return fmt.Errorf("launcher: no free loopback port for the rendezvous: %w", err)
		}
	}
	base := l.Env
	if base == nil {
		base = os.Environ()
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	cpus := allowedCPUs()
	procs := make([]*exec.Cmd, l.N)
	exits := make(chan exit, l.N)
	kill := func(sig syscall.Signal) {
		for _, p := range procs {
			if p != nil && p.Process != nil {
				p.Process.Signal(sig)
			}
		}
	}
	for r := 0; r < l.N; r++ {
		cmd := exec.Command(l.Cmd[0], l.Cmd[1:]...)
		cmd.Env = append(append([]string{}, base...),
			"RANK="+strconv.Itoa(r), "LOCAL_RANK="+strconv.Itoa(r),
			"WORLD_SIZE="+strconv.Itoa(l.N), "LOCAL_WORLD_SIZE="+strconv.Itoa(l.N),
			"MASTER_ADDR=127.0.0.1", "MASTER_PORT="+strconv.Itoa(port))
		if l.Threads > 0 {
			n := strconv.Itoa(l.Threads)
			cmd.Env = append(cmd.Env, "OMP_NUM_THREADS="+n, "OPENBLAS_NUM_THREADS="+n, "MKL_NUM_THREADS="+n)
		}
		if l.Pin && l.Threads > 0 && len(cpus) >= l.N*l.Threads {
			cmd.Env = append(cmd.Env, WorkerCPUsEnv+"="+cpuList(cpus[r*l.Threads:(r+1)*l.Threads]))
		}
		cmd.Stdout, cmd.Stderr = l.Stderr, l.Stderr
		// Own process group: a terminal's Ctrl-C reaches the workers once,
		// through the launcher; Pdeathsig: a launcher killed with -9 takes
		// its workers with it.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			kill(syscall.SIGKILL)
			for i := 0; i < r; i++ {
				<-exits
			}
			return fmt.Errorf("launcher: starting worker %d: %w", r, err)
		}
		procs[r] = cmd
		if l.Started != nil {
			l.Started(r, cmd.Process.Pid)
		}
		go func(r int) { exits <- exit{r, procs[r].Wait()} }(r)
	}

	var first *exit
	var deadline <-chan time.Time
	interrupted := false
	for left := l.N; left > 0; {
		select {
		case s := <-sigs:
			if interrupted {
				// A second signal: the user does not want to wait for
				// the checkpoint.
				fmt.Fprintf(l.Stderr, "launcher: %v again: killing the %d workers\n", s, left)
				kill(syscall.SIGKILL)
				continue
			}
			interrupted = true
			fmt.Fprintf(l.Stderr, "launcher: %v: passing it to the %d workers (again to kill them)\n", s, left)
			kill(s.(syscall.Signal))
		case e := <-exits:
			left--
			if e.err != nil && first == nil {
				first = &e
				if left > 0 && !interrupted {
					fmt.Fprintf(l.Stderr, "launcher: worker rank %d %s; stopping the other %d\n", e.rank, describe(e.err), left)
					kill(syscall.SIGTERM)
					deadline = time.After(l.Grace)
				}
			}
		case <-deadline:
			fmt.Fprintf(l.Stderr, "launcher: workers still running %v after SIGTERM; killing them\n", l.Grace)
			kill(syscall.SIGKILL)
			deadline = nil
		}
	}
	switch {
	case first != nil && interrupted:
		return fmt.Errorf("interrupted: the workers stopped (rank %d %s); --resume continues from the checkpoint rank 0 saved", first.rank, describe(first.err))
	case first != nil:
		return fmt.Errorf("worker rank %d of %d %s", first.rank, l.N, describe(first.err))
	}
	return nil
}

// describe words a worker's exit: its status, or the signal that killed it.
func describe(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return fmt.Sprintf("was killed by signal %d (%v)", int(ws.Signal()), ws.Signal())
		}
		return fmt.Sprintf("exited with status %d", ee.ExitCode())
	}
	return err.Error()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
