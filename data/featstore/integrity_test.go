package featstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A second writer on a store in use is refused with an error naming the
// lock file and its holder, instead of deleting the first one's files.
func TestSecondWriterRefused(t *testing.T) {
	dir := t.TempDir()
	w1, err := Create(dir, Meta{CLIPModel: "test", EmbedDim: 3, ShardInputs: 2})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Create(dir, Meta{CLIPModel: "test", EmbedDim: 3, ShardInputs: 2})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), filepath.Join(dir, LockFile)) ||
		!strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Fatalf("second writer: %v", err)
	}
	for i := 0; i < 3; i++ {
		if err := w1.Add([]float32{1, 2, 3}, []Caption{{ImageID: fmt.Sprint(i), Caption: "c"}}); err != nil {
			t.Fatal(err)
		}
	}
	// Abort releases the lock; a new writer resumes after the committed shard.
	w1.Abort()
	w2, err := Create(dir, Meta{CLIPModel: "test", EmbedDim: 3, ShardInputs: 2})
	if err != nil {
		t.Fatal(err)
	}
	if w2.InputsDone() != 2 {
		t.Fatalf("resumed after %d inputs, want 2", w2.InputsDone())
	}
	if err := w2.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Create(dir, Meta{CLIPModel: "test", EmbedDim: 3}); err == nil || !strings.Contains(err.Error(), "already complete") {
		t.Fatalf("after Close the lock must be free and the store complete: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, LockFile)); len(b) != 0 {
		t.Fatalf("released lock still names a holder: %q", b)
	}
}

// A writer cleans the temporaries a killed writer left.
func TestCreateRemovesStaleTemps(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, ".emb-00003.safetensors.tmp-123")
	os.WriteFile(stale, []byte("half"), 0o644)
	w, err := Create(dir, Meta{CLIPModel: "test", EmbedDim: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("stale temporary survived: %v", err)
	}
}

// Open notices a shard whose bytes no longer match the manifest; an edit
// that keeps size and mtime passes the fast path but not Verify.
func TestOpenChecksShardHashes(t *testing.T) {
	dir := t.TempDir()
	writeStore(t, dir, 6, 4, -1)
	s, err := Open(dir) // first open: hashes and records verified.json
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Stat(filepath.Join(dir, VerifiedFile)); err != nil {
		t.Fatal(err)
	}
	shard := filepath.Join(dir, "emb-00000.safetensors")
	st, _ := os.Stat(shard)
	data, _ := os.ReadFile(shard)
	data[len(data)-1] ^= 0x40 // flip a bit of the last embedding value
	os.WriteFile(shard, data, 0o644)
	os.Chtimes(shard, st.ModTime(), st.ModTime())
	if s, err := Open(dir); err != nil {
		t.Fatalf("same size and mtime should take the fast path: %v", err)
	} else {
		s.Close()
	}
	if _, err := Verify(dir); err == nil || !strings.Contains(err.Error(), "sha256") || !strings.Contains(err.Error(), shard) {
		t.Fatalf("Verify of a flipped bit: %v", err)
	}
	os.Chtimes(shard, st.ModTime(), st.ModTime().Add(time.Second))
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("Open of a rewritten shard: %v", err)
	}
}

// A resumed writer with other inputs is refused, naming what changed.
func TestResumeRefusesOtherInputs(t *testing.T) {
	dir := t.TempDir()
	in := Inputs{Input: "ann.json", InputSHA256: "aaaa", Images: "/data/coco", Split: "train", Limit: 100, Items: 100, ItemsSHA256: "x"}
	w, err := Create(dir, Meta{CLIPModel: "test", EmbedDim: 3, ShardInputs: 1, Inputs: &in})
	if err != nil {
		t.Fatal(err)
	}
	w.Add([]float32{1, 2, 3}, nil)
	w.Abort()
	for _, c := range []struct {
		change func(*Inputs)
		want   string
	}{
		{func(i *Inputs) { i.Split, i.ItemsSHA256 = "val", "y" }, `split "train", now "val"`},
		{func(i *Inputs) { i.Limit, i.Items = 50, 50 }, "limit 100, now 50"},
		{func(i *Inputs) { i.InputSHA256 = "bbbb" }, "input ann.json sha256 aaaa, now bbbb"},
		{func(i *Inputs) { i.Images = "/other" }, "images root"},
		{func(i *Inputs) { i.ItemsSHA256 = "y" }, "item list"},
	} {
		other := in
		c.change(&other)
		_, err := Create(dir, Meta{CLIPModel: "test", EmbedDim: 3, ShardInputs: 1, Inputs: &other})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want an error naming %q, got %v", c.want, err)
		}
	}
	same := in
	same.Input = "/mnt/new/ann.json" // moved, same content
	w, err = Create(dir, Meta{CLIPModel: "test", EmbedDim: 3, ShardInputs: 1, Inputs: &same})
	if err != nil {
		t.Fatal(err)
	}
	if w.InputsDone() != 1 {
		t.Fatalf("resumed after %d", w.InputsDone())
	}
	w.Abort()
}
