package train

import (
	"flag"
	"strings"
)

// Flags are `clipcap train`'s command line: the Job, --verify and the local
// launcher's --nproc-per-node. --resume's optional value is taken out of
// the arguments before parsing (SplitResume); its flag here gives the help.
type Flags struct {
	Job
	Verify       bool
	NProcPerNode int
}

// RegisterFlags defines train's flags on fs.
func (f *Flags) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&f.Config, "config", "", "training config (YAML; presets in configs/)")
	fs.Var((*setList)(&f.Sets), "set", "override a config key, key=value (repeatable)")
	fs.BoolVar(&f.Verify, "verify", false, "hash every feature store shard against its manifest (verify_data=true)")
	fs.Bool("resume", false, "continue the run in RUN_DIR (default: the config's out_dir/prefix, started when it has no checkpoint yet) from its latest checkpoint")
	fs.IntVar(&f.NProcPerNode, "nproc-per-node", 0, "data-parallel: start N workers on this machine (loopback rendezvous, cores/N threads each)")
}

// Parsed returns the Job the parsed flags describe, --verify as the last
// override (verify_data=true).
func (f *Flags) Parsed() Job {
	j := f.Job
	if f.Verify {
		j.Sets = append(j.Sets[:len(j.Sets):len(j.Sets)], "verify_data=true")
	}
	return j
}

// setList is --set: repeatable, in order.
type setList []string

func (s *setList) String() string     { return strings.Join(*s, ",") }
func (s *setList) Set(v string) error { *s = append(*s, v); return nil }
