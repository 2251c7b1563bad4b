package main

import (
	"os"

	"github.com/clipcap/clipcap/demo"
)

const demoDataSummary = "write the embedded demo's synthetic captioning set (and a seeded random CLIP tower)"

func init() {
	register(command{name: "demo-data", summary: demoDataSummary, run: runDemoData})
}

func runDemoData(args []string) error {
	fs := newFlags("demo-data", "--out DIR [flags]", demoDataSummary)
	var o demo.Options
	o.RegisterFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if o.Out == "" {
		return usagef("--out is required")
	}
	return demo.Write(o, os.Stderr)
}
