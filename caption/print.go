package caption

import (
	"encoding/json"
	"fmt"
	"io"
)

// Printer writes captions as `clipcap caption` prints them: the text alone,
// "input<TAB>text" with Labels (several inputs), or with JSON one object per
// caption: {"input", "index", "caption", "tokens", "score"}.
type Printer struct {
	W      io.Writer
	JSON   bool
	Labels bool
}

// Print writes the caption of input label (the index-th caption printed
// for it, or of the run).
func (p Printer) Print(label string, index int, c Caption) error {
	if p.JSON {
		line, err := json.Marshal(struct {
			Input   string  `json:"input"`
			Index   int     `json:"index"`
			Caption string  `json:"caption"`
			Tokens  []int   `json:"tokens"`
			Score   float64 `json:"score"`
		}{label, index, c.Text, c.Tokens, c.Score})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(p.W, "%s\n", line)
		return err
	}
	if p.Labels {
		_, err := fmt.Fprintf(p.W, "%s\t%s\n", label, c.Text)
		return err
	}
	_, err := fmt.Fprintln(p.W, c.Text)
	return err
}
