package demo

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clipcap/clipcap/internal/flagtest"
)

func TestRegisterFlags(t *testing.T) {
	var o Options
	fs := flagtest.Parse(t, o.RegisterFlags)
	if o != (Options{Sizes: Sizes{Train: 1500, Val: 150, Test: 150}, Size: 64, Seed: 1}) {
		t.Errorf("defaults %+v", o)
	}
	if err := fs.Parse(strings.Fields("--out d --train 3 --val 2 --test 1 --size 32 --seed 9 --random-clip c/clip.safetensors")); err != nil {
		t.Fatal(err)
	}
	if o != (Options{Out: "d", Sizes: Sizes{Train: 3, Val: 2, Test: 1}, Size: 32, Seed: 9, RandomCLIP: "c/clip.safetensors"}) {
		t.Errorf("parsed %+v", o)
	}
}

// Write makes the set, the random tower (its directory too) and the line.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	var log strings.Builder
	o := Options{Out: filepath.Join(dir, "set"), Sizes: Sizes{Train: 2, Val: 1}, Size: 16, Seed: 3, RandomCLIP: filepath.Join(dir, "towers", "clip.safetensors")}
	if err := Write(o, &log); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(o.Out, "demo.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines := 0
	for sc := bufio.NewScanner(f); sc.Scan(); {
		lines++
	}
	if lines != 3 {
		t.Errorf("demo.jsonl has %d lines, want 3", lines)
	}
	if st, err := os.Stat(o.RandomCLIP); err != nil || st.Size() == 0 {
		t.Errorf("random CLIP: %v", err)
	}
	if want := "demo data: 2 train, 1 val, 0 test images in " + o.Out + "\n"; log.String() != want {
		t.Errorf("log %q, want %q", log.String(), want)
	}
}
