package progress

import (
	"bytes"
	"strings"
	"testing"
)

// Off a terminal the bar logs one line per Every units and a final one,
// never a redraw (no carriage returns).
func TestLogLinesOffTerminal(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, 100, Options{Desc: "extract", Unit: "images", Every: 25})
	for i := 0; i < 100; i++ {
		b.Add(1)
	}
	b.Finish()
	out := buf.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || strings.Contains(out, "\r") {
		t.Fatalf("want 3 interval lines + 1 final, no redraws; got %q", out)
	}
	if !strings.HasPrefix(lines[0], "extract: 25/100 images (25%)") || !strings.HasPrefix(lines[3], "extract: 100/100 images (100%)") {
		t.Fatalf("lines %q", lines)
	}
}

func TestResumedAndBytes(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, 4<<20, Options{Desc: "gpt2/model.safetensors", Unit: "bytes", Done: 3 << 20, Every: 1 << 20})
	b.Add(1 << 20)
	b.Finish()
	if out := buf.String(); !strings.Contains(out, "4.0 MiB of 4.0 MiB (100%)") || strings.Count(out, "\n") != 1 {
		t.Fatalf("got %q", out)
	}
}

func TestNilIsSilent(t *testing.T) {
	var b *Bar = New(nil, 10, Options{})
	b.Add(3) // must not panic
	b.Describe("x")
	b.Finish()
	if New(&bytes.Buffer{}, 0, Options{}) != nil {
		t.Fatal("a job of 0 units got a bar")
	}
}
