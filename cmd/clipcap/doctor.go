package main

import (
	"os"

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

// runVersion prints the build info (doctor.Version).
func runVersion(args []string) error {
	fs := newFlags("version", "", "Print clipcap's version, source revision and Go toolchain (doctor prints the runtime).")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return doctor.Version(os.Stdout)
}
