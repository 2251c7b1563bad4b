package torchrt

import (
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/sugarme/gotch"
)

// DeviceVar registers a command's --device into p: one default (auto) and
// one help text for every command; ParseDevice reads the value.
func DeviceVar(fs *flag.FlagSet, p *string) {
	fs.StringVar(p, "device", "auto", "cpu, cuda, cuda:N, or auto: the first CUDA device when this libtorch has one, else the CPU")
}

// ParseDevice reads "cpu", "cuda", "cuda:N" or "auto" (CUDA when available).
func ParseDevice(s string) (gotch.Device, error) {
	switch s {
	case "", "auto":
		return gotch.CudaIfAvailable(), nil
	case "cpu":
		return gotch.CPU, nil
	case "cuda":
		if !gotch.CUDA.IsAvailable() {
			return gotch.CPU, fmt.Errorf("device cuda: no CUDA device is available to this libtorch")
		}
		return gotch.CudaBuilder(0), nil
	}
	if rest, ok := strings.CutPrefix(s, "cuda:"); ok {
		i, err := strconv.Atoi(rest)
		if err != nil || i < 0 {
			return gotch.CPU, fmt.Errorf("device %q: want cuda:N with N a device index", s)
		}
		if int64(i) >= gotch.CUDA.DeviceCount() {
			return gotch.CPU, fmt.Errorf("device %q: only %d CUDA devices available", s, gotch.CUDA.DeviceCount())
		}
		return gotch.CudaBuilder(uint(i)), nil
	}
	return gotch.CPU, fmt.Errorf("device %q: want cpu, cuda, cuda:N or auto", s)
}
