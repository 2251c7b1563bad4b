package featstore

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeStore(t *testing.T, dir string, n, shardInputs int, stopAfter int) {
	t.Helper()
	w, err := Create(dir, Meta{CLIPModel: "test", EmbedDim: 3, ShardInputs: shardInputs})
	if err != nil {
		t.Fatal(err)
	}
	for i := w.InputsDone(); i < n; i++ {
		if i == stopAfter {
			w.Abort() // simulated kill: nothing after the last committed shard survives
			return
		}
		if i%5 == 3 {
			if err := w.Reject(filepath.Join("img", string(rune('a'+i))), "corrupt"); err != nil {
				t.Fatal(err)
			}
			continue
		}
		emb := []float32{float32(i), float32(i) / 2, -float32(i)}
		caps := []Caption{{ImageID: string(rune('a' + i)), Caption: "caption " + string(rune('a'+i)), Split: "train"}}
		if err := w.Add(emb, caps); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestWriteReadAndResume(t *testing.T) {
	whole := t.TempDir()
	writeStore(t, whole, 17, 4, -1)
	resumed := t.TempDir()
	writeStore(t, resumed, 17, 4, 10) // killed mid-shard
	if _, err := Open(resumed); err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Fatalf("opening an interrupted store: %v", err)
	}
	writeStore(t, resumed, 17, 4, -1)
	for _, f := range []string{ManifestFile, CaptionsFile, "emb-00000.safetensors", "emb-00004.safetensors"} {
		a, err1 := os.ReadFile(filepath.Join(whole, f))
		b, err2 := os.ReadFile(filepath.Join(resumed, f))
		if err1 != nil || err2 != nil || string(a) != string(b) {
			t.Errorf("%s differs between the whole and the resumed run (%v %v)", f, err1, err2)
		}
	}
	s, err := Open(whole)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if len(s.Manifest.Rejected) != 3 || s.Rows() != 14 || len(s.Captions) != 14 {
		t.Fatalf("rejected %d rows %d captions %d", len(s.Manifest.Rejected), s.Rows(), len(s.Captions))
	}
	dst := make([]float32, 3)
	for _, c := range s.Captions {
		if err := s.Embedding(c.Embedding, dst); err != nil {
			t.Fatal(err)
		}
		i := float32(c.ImageID[0] - 'a')
		if dst[0] != i || dst[1] != i/2 || dst[2] != -i {
			t.Fatalf("%s: embedding %v", c.ImageID, dst)
		}
	}
}

func TestOpenRejectsBadStores(t *testing.T) {
	dir := t.TempDir()
	writeStore(t, dir, 6, 4, -1)
	if err := os.WriteFile(filepath.Join(dir, CaptionsFile), []byte("{\"image_id\": \"x\", \"embedding\": 99}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "outside") {
		t.Fatalf("bad row: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, CaptionsFile), []byte("{not json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("bad json: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "emb-00000.safetensors"), []byte("trunc"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "emb-00000") {
		t.Fatalf("truncated shard: %v", err)
	}
}
