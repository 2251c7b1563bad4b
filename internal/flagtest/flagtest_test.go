package flagtest

import (
	"flag"
	"testing"
)

func TestParse(t *testing.T) {
	var n int
	fs := Parse(t, func(fs *flag.FlagSet) { fs.IntVar(&n, "n", 1, "") }, "-n", "3", "rest")
	if n != 3 || fs.NArg() != 1 || fs.Arg(0) != "rest" {
		t.Errorf("n %d, args %q", n, fs.Args())
	}
}
