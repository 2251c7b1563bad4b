package extract

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sugarme/gotch"

	"github.com/clipcap/clipcap/data/featstore"
)

// Two extractions on one --out (a retried pod): one runs, the other is
// refused with the lock's holder, and the store is whole afterwards.
func TestConcurrentExtractsOnOneStore(t *testing.T) {
	root := t.TempDir()
	model := writeCLIP(t, root, tinyConfig)
	input := folderDataset(t, root, 24)
	out := filepath.Join(root, "store")
	batchDelay = 20 * time.Millisecond // keep the first run busy while the second starts
	defer func() { batchDelay = 0 }()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = Run(context.Background(), Options{Dataset: "folder", Input: input, CLIP: model, Out: out,
				ShardSize: 4, Batch: 2, Device: gotch.CPU, Stderr: io.Discard})
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, featstore.ErrLocked):
			t.Logf("refused: %v", err)
		case strings.Contains(err.Error(), "already complete"):
			t.Logf("the runs did not overlap: %v", err)
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d runs succeeded, want exactly 1 (errors %v)", ok, errs)
	}
	if s := openStore(t, out); s.Rows() != 21 {
		t.Fatalf("store has %d rows, want 21", s.Rows())
	}
}

// Resuming a store with other inputs is refused, naming what changed.
func TestResumeWithOtherInputsRefused(t *testing.T) {
	root := t.TempDir()
	model := writeCLIP(t, root, tinyConfig)
	input := folderDataset(t, root, 12)
	out := filepath.Join(root, "store")
	opt := Options{Dataset: "folder", Input: input, CLIP: model, Out: out, ShardSize: 4, Batch: 2, Limit: 8, Device: gotch.CPU, Stderr: io.Discard}
	if _, err := Run(context.Background(), opt); err != nil {
		t.Fatal(err)
	}
	// Make it look interrupted after its first shard.
	mp := filepath.Join(out, featstore.ManifestFile)
	var m featstore.Manifest
	data, _ := os.ReadFile(mp)
	if err := json.Unmarshal(data, &m); err != nil || m.Inputs == nil || m.Inputs.Items != 8 || m.Inputs.ItemsSHA256 == "" {
		t.Fatalf("manifest inputs %+v (%v)", m.Inputs, err)
	}
	m.Complete, m.Shards, m.InputsDone = false, m.Shards[:1], 4
	data, _ = json.Marshal(m)
	os.WriteFile(mp, data, 0o644)

	opt.Limit = 10
	if _, err := Run(context.Background(), opt); err == nil || !strings.Contains(err.Error(), "limit 8, now 10") {
		t.Fatalf("resume with another --limit: %v", err)
	}
	opt.Limit = 8
	os.WriteFile(filepath.Join(input, "000.txt"), []byte("a new caption\n"), 0o644)
	if _, err := Run(context.Background(), opt); err == nil || !strings.Contains(err.Error(), "item list") {
		t.Fatalf("resume after a caption changed: %v", err)
	}
}
