package featstore

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// writeItems writes the items i < n with i % count == index (count 0: all),
// rejecting every fifth, as extract does for shard index/count.
func writeItems(t *testing.T, dir string, n, index, count int, model string) {
	t.Helper()
	w, err := Create(dir, Meta{CLIPModel: model, Preprocess: "clip-pil-bicubic-32", EmbedDim: 2, ShardInputs: 3, ShardIndex: index, ShardCount: count})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if count > 0 && i%count != index {
			continue
		}
		item := i
		if i%5 == 4 {
			if err := w.RejectEntry(Rejected{Input: "img" + strconv.Itoa(i), Reason: "corrupt", Item: &item}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		caps := []Caption{{ImageID: strconv.Itoa(i), Caption: "a", Item: &item}, {ImageID: strconv.Itoa(i), Caption: "b", Item: &item}}
		if err := w.Add([]float32{float32(i), -float32(i)}, caps); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestMergeEqualsSingleRun(t *testing.T) {
	root := t.TempDir()
	single := filepath.Join(root, "single")
	writeItems(t, single, 17, 0, 0, "m")
	var parts []string
	for k := 2; k >= 0; k-- { // any order
		p := filepath.Join(root, "part"+strconv.Itoa(k))
		writeItems(t, p, 17, k, 3, "m")
		parts = append(parts, p)
	}
	merged := filepath.Join(root, "merged")
	if _, err := Merge(merged, parts, 3); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(single)
	if len(entries) < 4 {
		t.Fatalf("single run wrote only %d files", len(entries))
	}
	for _, e := range entries {
		a, _ := os.ReadFile(filepath.Join(single, e.Name()))
		b, err := os.ReadFile(filepath.Join(merged, e.Name()))
		if err != nil || string(a) != string(b) {
			t.Errorf("%s differs between the single run and the merge (%v)", e.Name(), err)
		}
	}
	if _, err := Verify(merged); err != nil {
		t.Fatal(err)
	}
}

func TestMergeRefuses(t *testing.T) {
	root := t.TempDir()
	p0, p1, other := filepath.Join(root, "p0"), filepath.Join(root, "p1"), filepath.Join(root, "other")
	writeItems(t, p0, 10, 0, 2, "m")
	writeItems(t, p1, 10, 1, 2, "m")
	writeItems(t, other, 10, 1, 2, "other-model")
	short := filepath.Join(root, "short")
	writeItems(t, short, 6, 1, 2, "m") // a part of a smaller extraction
	check := func(name string, parts []string, want string) {
		t.Helper()
		_, err := Merge(filepath.Join(root, "out-"+name), parts, 3)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want it to mention %q", name, err, want)
		}
	}
	check("missing", []string{p0}, "but 1 parts were given")
	check("dup", []string{p0, p0}, "are both shard 0/2")
	check("model", []string{p0, other}, "does not match")
	check("short", []string{p0, short}, "should cover")
	// A damaged shard fails its checksum.
	shard := filepath.Join(p1, "emb-00000.safetensors")
	data, _ := os.ReadFile(shard)
	data[len(data)-1] ^= 1
	os.WriteFile(shard, data, 0o644)
	check("sha", []string{p0, p1}, "sha256")
}
