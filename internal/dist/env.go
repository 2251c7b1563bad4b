package dist

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// DefaultPort is torch.distributed's default MASTER_PORT.
const DefaultPort = 29500

// Env is where this process stands in a job, as its launcher described it.
type Env struct {
	Rank, World int
	LocalRank   int
	Addr        string // MASTER_ADDR: the host of rank 0
	Port        int    // MASTER_PORT
	Source      string // which variables described it, for messages
}

// Loopback reports whether the job is on this host only.
func (e Env) Loopback() bool {
	if e.Addr == "localhost" {
		return true
	}
	ip := net.ParseIP(e.Addr)
	return ip != nil && ip.IsLoopback()
}

// FromEnv reads the variables torchrun, Kubeflow's PyTorchJob and clipcap's
// own launcher set (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT),
// or Slurm's under srun (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, with
// MASTER_ADDR/MASTER_PORT from the batch script). ok is false when none
// describe a job of more than one process.
func FromEnv(getenv func(string) string) (env Env, ok bool, err error) {
	rankVar, worldVar, localVar := "RANK", "WORLD_SIZE", "LOCAL_RANK"
	env.Source = "RANK/WORLD_SIZE"
	if getenv("WORLD_SIZE") == "" && getenv("RANK") == "" {
		if getenv("SLURM_NTASKS") == "" || getenv("SLURM_PROCID") == "" {
			return env, false, nil
		}
		rankVar, worldVar, localVar = "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"
		env.Source = "SLURM_PROCID/SLURM_NTASKS"
	}
	num := func(name string, def int) (int, error) {
		s := strings.TrimSpace(getenv(name))
		if s == "" {
			if def < 0 {
				return 0, fmt.Errorf("%s is not set", name)
			}
			return def, nil
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			return 0, fmt.Errorf("%s=%q is not an integer", name, s)
		}
		return n, nil
	}
	if env.World, err = num(worldVar, -1); err != nil {
		return env, false, fmt.Errorf("distributed launch: %w (%s describe the job)", err, env.Source)
	}
	if env.World < 1 {
		return env, false, fmt.Errorf("distributed launch: %s=%d: the world size must be at least 1", worldVar, env.World)
	}
	if env.Rank, err = num(rankVar, -1); err != nil {
		return env, false, fmt.Errorf("distributed launch: %w (%s describe the job)", err, env.Source)
	}
	if env.Rank < 0 || env.Rank >= env.World {
		return env, false, fmt.Errorf("distributed launch: %s=%d is outside the world of %s=%d (ranks 0..%d)",
			rankVar, env.Rank, worldVar, env.World, env.World-1)
	}
	if env.LocalRank, err = num(localVar, env.Rank); err != nil {
		return env, false, fmt.Errorf("distributed launch: %w", err)
	}
	if env.LocalRank < 0 {
		return env, false, fmt.Errorf("distributed launch: %s=%d is negative", localVar, env.LocalRank)
	}
	if env.World == 1 {
		return env, false, nil
	}
	env.Addr = strings.TrimSpace(getenv("MASTER_ADDR"))
	if env.Addr == "" {
		return env, false, fmt.Errorf("distributed launch: MASTER_ADDR is not set (the host name or address of rank 0; %s=%d)", worldVar, env.World)
	}
	if env.Port, err = num("MASTER_PORT", DefaultPort); err != nil {
		return env, false, fmt.Errorf("distributed launch: %w", err)
	}
	if env.Port < 1 || env.Port > 65535 {
		return env, false, fmt.Errorf("distributed launch: MASTER_PORT=%d is not a TCP port (1..65535)", env.Port)
	}
	return env, true, nil
}
