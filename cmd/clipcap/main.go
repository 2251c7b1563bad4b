// Command clipcap trains, evaluates and serves CLIP-prefix captioning models.
//
// Each subcommand lives in its own file and registers itself with register();
// this file only dispatches. Subcommands parse their own flags and call one
// library package each.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/clipcap/clipcap/internal/torchrt"
)

// command is one `clipcap <name>` subcommand.
type command struct {
	name    string
	summary string
	// run receives the arguments after the command name. It returns
	// flag.ErrHelp after printing help, or an error to report.
	run func(args []string) error
	// light commands run no libtorch compute: they skip the runtime tuning
	// re-exec (torchrt.Tune), which would double their start-up time.
	light bool
}

var commands = map[string]command{}

func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("clipcap: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

func usage() {
	fmt.Fprintf(os.Stderr, "clipcap: CLIP-prefix image captioning (ClipCap) on libtorch\n\nUsage: clipcap <command> [flags]\n\nCommands:\n")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(os.Stderr, "\nRun 'clipcap <command> --help' for a command's flags.\n")
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage()
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "clipcap: unknown command %q\n", args[0])
		usage()
		return 2
	}
	if !c.light && !isHelp(args[1:]) {
		torchrt.Tune()
	}
	err := c.run(args[1:])
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		// Said once, with where to look; 2 as for every usage error.
		fmt.Fprintf(os.Stderr, "clipcap %s: %v\nRun 'clipcap %s --help' for its flags.\n", c.name, ue.error, c.name)
		return 2
	default:
		msg := err.Error()
		if !strings.HasPrefix(msg, c.name+":") {
			msg = c.name + ": " + msg
		}
		fmt.Fprintf(os.Stderr, "clipcap %s\n", msg)
		return 1
	}
}

// usageError is a mistake in the command line (unknown flag, bad value,
// missing argument): reported once, exit status 2.
type usageError struct{ error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// parseFlags parses a command's flags. --help prints the command's help to
// stdout; a bad flag is a usageError, printed once by run (the flag package's
// own message and usage dump are suppressed).
func parseFlags(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(os.Stdout)
		fs.Usage()
		return err
	}
	if err != nil {
		return usageError{err}
	}
	return nil
}

// newFlags returns a FlagSet for a subcommand whose -h/--help prints the
// summary, the usage line and the flags.
func newFlags(name, usageLine, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "%s\n\nUsage: clipcap %s %s\n\nFlags:\n", summary, name, usageLine)
		fs.PrintDefaults()
	}
	return fs
}

// signalContext is the context of every long-running command: cancelled on
// Ctrl-C and on SIGTERM, which is how Kubernetes, Slurm and systemd stop a
// job, so each command gets its chance to save or clean up.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// isHelp reports whether the arguments only ask for a command's help.
func isHelp(args []string) bool {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" {
			return true
		}
	}
	return false
}
