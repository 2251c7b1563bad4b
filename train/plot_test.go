package train

import (
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPlot(t *testing.T) {
	dir := t.TempDir()
	// Step 20 is logged twice (a killed and resumed run): the last value wins.
	lines := `{"type":"train","step":10,"epoch":1,"loss":4,"time":1}
{"type":"train","step":20,"epoch":1,"loss":9,"time":2}
{"type":"train","step":20,"epoch":1,"loss":3,"time":2}
{"type":"val","step":20,"epoch":1,"val_loss":3.5,"time":2}
{"type":"train","step":30,"epoch":1,"loss":2,"time":3}
{"type":"val","step":40,"epoch":1,"val_loss":2.5,"time":2}
{"type":"train","st`
	os.WriteFile(filepath.Join(dir, MetricsFile), []byte(lines), 0o644)
	curves, err := LossCurves(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(curves[0].Points) != 3 || curves[0].Points[1] != [2]float64{20, 3} || len(curves[1].Points) != 2 {
		t.Fatalf("curves %+v", curves)
	}
	svg := filepath.Join(dir, "loss.svg")
	if err := Plot(dir, svg); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(svg)
	if s := string(b); strings.Count(s, "<path") != 3 || strings.Count(s, " L") != 3 || !strings.Contains(s, "val loss") {
		t.Errorf("SVG:\n%s", s)
	}
	pngPath := filepath.Join(dir, "loss.png")
	if err := Plot(dir, pngPath); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(pngPath)
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	// The val curve's last point (40, 2.5) is drawn in its color.
	x, y := newFrame(curves).px([2]float64{40, 2.5})
	if r, g, _, _ := img.At(int(x), int(y)).RGBA(); r>>8 != 214 || g>>8 != 39 {
		t.Errorf("pixel at val point (%d,%d) is %v", int(x), int(y), img.At(int(x), int(y)))
	}
	if err := Plot(dir, filepath.Join(dir, "loss.jpg")); err == nil {
		t.Error("a .jpg output was accepted")
	}
}
