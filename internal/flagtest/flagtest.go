// Package flagtest parses command-line flags in the tests of the packages
// that define them (their RegisterFlags methods).
package flagtest

import (
	"flag"
	"io"
	"testing"
)

// Parse defines flags on a fresh FlagSet with register and parses args into
// them; a parse error fails the test. The FlagSet is returned for further
// parses and its positional arguments.
func Parse(t testing.TB, register func(*flag.FlagSet), args ...string) *flag.FlagSet {
	t.Helper()
	fs := flag.NewFlagSet(t.Name(), flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parsing %q: %v", args, err)
	}
	return fs
}
