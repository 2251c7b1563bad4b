package metrics
import ("testing";"path/filepath")
func TestStatTmp(t *testing.T) {
	ann, _ := LoadAnnotations(filepath.Join("testdata", "parity_main_annotations.json"))
	var caps []string
	for _, c := range ann.Captions { caps = append(caps, c.Caption) }
	p := newPlan(caps)
	dep, fast := 0, 0
	for i := range caps { if p.dep[i] { dep++ }; if _, ok := fastTokenize(p.lines[i]); ok { fast++ } }
	cands := 0; pos := 0
	lx := ptb()
	for _, l := range p.lines { for _, c := range l { pos++; if c < 128 { cands += len(lx.ascii[c]) } else { cands += len(lx.other) } } }
	t.Logf("n=%d dep=%d fast=%d avg cands/char=%.1f other=%d", len(caps), dep, fast, float64(cands)/float64(pos), len(lx.other))
}
