package caption

import (
	"fmt"
	"time"

	"github.com/clipcap/clipcap/model/mapper"
	"github.com/clipcap/clipcap/model/nn"
)

// setPrecision converts the GPT-2 and mapper weights for inference. The
// conversion runs once at load; PrecisionNote reports its time and the
// bytes a decoding step then reads (its memory floor).
func (c *Captioner) setPrecision(s string) error {
	p, err := nn.ParsePrecision(s)
	if err != nil {
		return err
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
	if p != nn.FP32 {
		c.PrecisionNote = fmt.Sprintf("%s weights for GPT-2 and the mapper, converted in %v; a decoding step reads %.0f MB of weights",
			p, time.Since(start).Round(time.Millisecond), float64(perToken)/1e6)
	}
	return nil
}
