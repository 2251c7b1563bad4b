package train

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/clipcap/clipcap/internal/dist"
)

// The command line of `clipcap train` that is not flags: the optional
// value of --resume, the local launcher (--nproc-per-node) and the job a
// worker's environment puts it in.

// SplitResume pulls --resume [RUN_DIR] out of args: its value is optional,
// which the flag package cannot express.
func SplitResume(args []string) (rest []string, resume bool, dir string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--resume" || a == "-resume":
			resume = true
			if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				dir = args[i+1]
				i++
			}
		case strings.HasPrefix(a, "--resume=") || strings.HasPrefix(a, "-resume="):
			resume, dir = true, a[strings.Index(a, "=")+1:]
		default:
			rest = append(rest, a)
		}
	}
	return rest, resume, dir
}

// withoutFlag drops --name VALUE / --name=VALUE from args: the launcher's
// own flag, which its workers must not see.
func withoutFlag(args []string, name string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := strings.TrimLeft(args[i], "-")
		switch {
		case a == name && strings.HasPrefix(args[i], "-"):
			i++ // and its value
		case strings.HasPrefix(a, name+"=") && strings.HasPrefix(args[i], "-"):
		default:
			out = append(out, args[i])
		}
	}
	return out
}

// LaunchLocal runs `clipcap train args...` (this executable) on n local
// workers, args without --nproc-per-node: rendezvous on loopback, cores/n
// CPU threads each, each worker pinned to its own cores unless
// CLIPCAP_PIN=0 (CUDA workers take cuda:LOCAL_RANK).
func LaunchLocal(n int, args []string) error {
	if _, inJob, _ := dist.FromEnv(os.Getenv); inJob {
		return fmt.Errorf("--nproc-per-node: already inside a job (RANK/WORLD_SIZE or SLURM_* are set); drop the flag, the launcher started this process")
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("--nproc-per-node: cannot find the clipcap binary to start workers: %w", err)
	}
	threads := max(1, runtime.NumCPU()/n)
	if s := os.Getenv("OMP_NUM_THREADS"); s != "" {
		threads, _ = strconv.Atoi(s) // the user's choice wins
	}
	pin := os.Getenv("CLIPCAP_PIN") != "0"
	how := ""
	if pin {
		how = ", each pinned to its own cores (CLIPCAP_PIN=0: not)"
	}
	fmt.Fprintf(os.Stderr, "launcher: %d workers, %d CPU threads each%s\n", n, threads, how)
	return dist.Launch{N: n, Cmd: append([]string{exe, "train"}, withoutFlag(args, "nproc-per-node")...), Threads: threads, Pin: pin}.Run()
}

// JobFromEnv puts this process into the job its environment describes, if
// any; ranks other than 0 log nothing (their errors still reach stderr).
func JobFromEnv() ([]Option, io.Writer, error) {
	env, ok, err := dist.FromEnv(os.Getenv)
	if err != nil || !ok {
		return nil, os.Stderr, err
	}
	log := io.Writer(os.Stderr)
	if env.Rank != 0 {
		log = io.Discard
	}
	cpus, err := dist.PinFromEnv()
	if err != nil {
		return nil, log, fmt.Errorf("rank %d: %w", env.Rank, err)
	}
	if cpus != nil {
		fmt.Fprintf(log, "rank %d: pinned to CPU(s) %v\n", env.Rank, cpus)
	}
	return []Option{InJob(env)}, log, nil
}
