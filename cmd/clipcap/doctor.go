package main

import (
	"fmt"
	"os"
	"runtime/debug"

	"github.com/clipcap/clipcap/internal/doctor"
)

func init() {
	register(command{name: "doctor", summary: "print libtorch, BLAS, devices and tokenizer facts for bug reports", run: runDoctor})
	register(command{name: "version", summary: "print clipcap's version and build", light: true, run: runVersion})
}

func runDoctor(args []string) error {
	fs := newFlags("doctor", "", "Print what clipcap runs on: libtorch build, BLAS kernel and how it was chosen, devices, gotch and tokenizer paths, and a matmul check.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return doctor.Report(os.Stdout)
}

// runVersion prints the build info Go records in the binary: module
// version, VCS revision and time, and the toolchain.
func runVersion(args []string) error {
	fs := newFlags("version", "", "Print clipcap's version, source revision and Go toolchain (doctor prints the runtime).")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return fmt.Errorf("this binary carries no build info")
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	rev := settings["vcs.revision"]
	if rev == "" {
		rev = "unknown revision"
	} else if settings["vcs.modified"] == "true" {
		rev += " (modified)"
	}
	fmt.Printf("clipcap %s, %s %s, %s %s/%s\n", info.Main.Version, rev, settings["vcs.time"], info.GoVersion, settings["GOOS"], settings["GOARCH"])
	if doctor.BuildLibtorch != "" {
		fmt.Printf("built against %s; gotch %s\n", doctor.BuildLibtorch, doctor.BuildGotch)
	}
	return nil
}
