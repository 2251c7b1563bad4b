package main

import (
	"os"

	"github.com/clipcap/clipcap/internal/doctor"
)

func init() {
	register(command{name: "doctor", summary: "print libtorch, BLAS, devices and tokenizer facts for bug reports", run: runDoctor})
	register(command{name: "version", summary: "same as doctor", run: runDoctor})
}

func runDoctor(args []string) error {
	fs := newFlags("doctor", "", "Print what clipcap runs on: libtorch build, BLAS kernel and how it was chosen, devices, gotch and tokenizer paths, and a matmul check.")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return doctor.Report(os.Stdout)
}
