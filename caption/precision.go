package caption

import (
	"fmt"
	"time"

	"github.com/clipcap/clipcap/model/mapper"
	"github.com/clipcap/clipcap/model/nn"
)

// setPrecision converts the GPT-2 and mapper weights for inference. The
// conversion runs once at load; PrecisionNote reports its time and the
// bytes a decoding step then reads (its memory floor). A model directory
// that stores its weights in bf16 or int8 loads at that precision with no
// conversion; asked for fp32 it computes with the dequantized weights
// (said in the note), and another low precision is an error: converting
// between them would only add rounding.
func (c *Captioner) setPrecision(s string) error {
	p, err := nn.ParsePrecision(s)
	if err != nil {
		return err
	}
	stored := c.stored
	if stored == "" {
		stored = nn.FP32
	}
	if stored != nn.FP32 && p != stored && p != nn.FP32 {
		return fmt.Errorf("its weights are stored as %s: load it with --precision %s, or fp32 for their dequantized values", stored, stored)
	}
	if stored != nn.FP32 && p == stored && c.Model.GPT.Head != nil {
		c.Precision = p
		perToken := c.Model.GPT.Head.Bytes()
		for _, b := range c.Model.GPT.Blocks {
			for _, l := range []*nn.Conv1D{b.Attn, b.Proj, b.Fc, b.MlpProj} {
				perToken += l.Low.Bytes()
			}
		}
		c.PrecisionNote = fmt.Sprintf("%s weights for GPT-2 and the mapper, stored so (no conversion); a decoding step reads %.0f MB of weights",
			p, float64(perToken)/1e6)
		return nil
	}
	start := time.Now()
	perToken, err := c.Model.GPT.SetPrecision(p)
	if err != nil {
		return err
	}
	if err := mapper.SetPrecision(c.Model.Mapper, p); err != nil {
		return err
	}
	c.Precision = p
	c.PrecisionNote = ""
	switch {
	case stored != nn.FP32:
		c.PrecisionNote = fmt.Sprintf("fp32 computation with the dequantized values of the %s weights the model stores", stored)
	case p != nn.FP32:
		c.PrecisionNote = fmt.Sprintf("%s weights for GPT-2 and the mapper, converted in %v; a decoding step reads %.0f MB of weights",
			p, time.Since(start).Round(time.Millisecond), float64(perToken)/1e6)
	}
	return nil
}

// clipPrecision picks the CLIP tower's precision: the caller's override,
// else the model directory's clip.precision, else bf16 when the language
// model runs in bf16 or int8 (the towers are compute-bound: bf16 products
// are what speeds them up; see clip.Model.SetPrecision).
func clipPrecision(override, dirSetting, model string) (nn.Precision, error) {
	for _, s := range []string{override, dirSetting} {
		if s != "" {
			return nn.ParsePrecision(s)
		}
	}
	p, err := nn.ParsePrecision(model)
	if err != nil || p == nn.FP32 {
		return nn.FP32, err
	}
	return nn.BF16, nil
}
