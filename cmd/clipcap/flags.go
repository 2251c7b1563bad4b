package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/clipcap/clipcap/caption"
	"github.com/clipcap/clipcap/internal/torchrt"
	"github.com/clipcap/clipcap/model/generate"
)

// Flags shared by several commands, defined once (their definitions live
// with what they configure: torchrt.DeviceVar, caption.LoadFlags and
// caption.DecodeFlags); here, what turns them into usage errors.

// deviceFlag is every command's --device: one default, one help text.
func deviceFlag(fs *flag.FlagSet) *string {
	var s string
	torchrt.DeviceVar(fs, &s)
	return &s
}

// modelFlags name a model directory and where it runs: caption, live and
// serve load their captioner through them.
type modelFlags struct{ caption.LoadFlags }

// loadCaptioner loads the model directory. clipOverride, when not "", wins
// over --clip ("-": no encoder). libtorch's grad mode is per OS thread, so
// loading stays on one; the caller keeps the thread locked while it runs
// the model (hence unlock is returned).
func (m *modelFlags) loadCaptioner(clipOverride string) (c *caption.Captioner, unlock func(), err error) {
	if m.Model == "" {
		return nil, nil, usagef("--model is required")
	}
	dev, err := torchrt.ParseDevice(m.Device)
	if err != nil {
		return nil, nil, usageError{err}
	}
	clipArg := m.CLIP
	if clipOverride != "" && clipArg == "" {
		clipArg = clipOverride
	}
	runtime.LockOSThread()
	c, err = caption.Load(m.Model, caption.Options{Device: dev, CLIP: clipArg, RawText: m.RawText, Precision: m.Precision})
	if err != nil {
		runtime.UnlockOSThread()
		return nil, nil, err
	}
	if c.PrecisionNote != "" { // what converting the weights cost at load
		fmt.Fprintln(os.Stderr, "precision: "+c.PrecisionNote)
	}
	return c, runtime.UnlockOSThread, nil
}

// decodeFlags are the generation flags shared by caption, eval, live and
// serve; a bad value is a usage error.
type decodeFlags struct{ caption.DecodeFlags }

func (d *decodeFlags) options() (generate.Options, error) {
	o, err := d.Options()
	if err != nil {
		return o, usageError{err}
	}
	return o, nil
}

// stringList is a repeatable string flag (--image a --image b).
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
