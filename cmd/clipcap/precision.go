package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/clipcap/clipcap/caption"
)

// precisionFlag registers --precision for the commands that run inference.
func precisionFlag(fs *flag.FlagSet) *string {
	return fs.String("precision", "", "GPT-2 and mapper weights for inference: fp32, bf16 or int8\n(default: the model directory's generation.precision, else fp32)")
}

// notePrecision logs what converting the weights cost at load.
func notePrecision(c *caption.Captioner) {
	if c.PrecisionNote != "" {
		fmt.Fprintln(os.Stderr, "precision: "+c.PrecisionNote)
	}
}
