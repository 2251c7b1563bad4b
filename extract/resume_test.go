package extract

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sugarme/gotch"

	"github.com/clipcap/clipcap/data/featstore"
)

const childEnv = "CLIPCAP_EXTRACT_TEST_CHILD"

// childOptions is what the re-executed test binary runs.
type childOptions struct {
	Input, CLIP, Out string
	ShardSize, Batch int
	Delay            time.Duration
}

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		var c childOptions
		if err := json.Unmarshal([]byte(spec), &c); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		batchDelay = c.Delay
		_, err := Run(context.Background(), Options{Dataset: "folder", Input: c.Input, CLIP: c.CLIP, Out: c.Out,
			ShardSize: c.ShardSize, Batch: c.Batch, Device: gotch.CPU, Stderr: io.Discard})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// folderDataset writes n small images (every seventh one corrupt) and
// returns the folder.
func folderDataset(t *testing.T, root string, n int) string {
	dir := filepath.Join(root, "imgs")
	for i := 0; i < n; i++ {
		p := filepath.Join(dir, fmt.Sprintf("%03d.png", i))
		if i%7 == 5 {
			os.MkdirAll(dir, 0o755)
			os.WriteFile(p, []byte("not an image"), 0o644)
			continue
		}
		writeImage(t, p, 2*i, 36+i%5, 40)
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("%03d.txt", i)), []byte(fmt.Sprintf("image %d\n", i)), 0o644)
	}
	return dir
}

func sameFiles(t *testing.T, a, b string) {
	t.Helper()
	entries, err := os.ReadDir(a)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := os.ReadDir(b)
	if len(entries) != len(other) {
		t.Errorf("%s has %d files, %s %d", a, len(entries), b, len(other))
	}
	for _, e := range entries {
		x, _ := os.ReadFile(filepath.Join(a, e.Name()))
		y, err := os.ReadFile(filepath.Join(b, e.Name()))
		if err != nil || string(x) != string(y) {
			t.Errorf("%s differs (%v)", e.Name(), err)
		}
	}
}

// A run killed with SIGKILL after committing a shard resumes to the same
// store, byte for byte, as an uninterrupted run.
func TestKill9Resume(t *testing.T) {
	root := t.TempDir()
	model := writeCLIP(t, root, tinyConfig)
	input := folderDataset(t, root, 40)
	whole, killed := filepath.Join(root, "whole"), filepath.Join(root, "killed")
	opt := Options{Dataset: "folder", Input: input, CLIP: model, ShardSize: 8, Batch: 3, Device: gotch.CPU, Stderr: io.Discard}
	opt.Out = whole
	if _, err := Run(context.Background(), opt); err != nil {
		t.Fatal(err)
	}

	spec, _ := json.Marshal(childOptions{Input: input, CLIP: model, Out: killed, ShardSize: 8, Batch: 3, Delay: 40 * time.Millisecond})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(spec))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	var m featstore.Manifest
	for {
		data, err := os.ReadFile(filepath.Join(killed, featstore.ManifestFile))
		if err == nil && json.Unmarshal(data, &m) == nil && len(m.Shards) >= 1 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no shard committed in 30s: %s", stderr.String())
		}
		time.Sleep(2 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	err := cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		t.Fatalf("child was not killed (%v): %s", err, stderr.String())
	}
	data, _ := os.ReadFile(filepath.Join(killed, featstore.ManifestFile))
	json.Unmarshal(data, &m)
	if m.Complete || m.InputsDone == 0 || m.InputsDone >= 40 {
		t.Fatalf("killed store: complete %v, %d inputs done", m.Complete, m.InputsDone)
	}
	t.Logf("killed after %d of 40 inputs", m.InputsDone)

	opt.Out = killed
	sum, err := Run(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Resumed != m.InputsDone {
		t.Fatalf("resumed after %d inputs, the store had %d", sum.Resumed, m.InputsDone)
	}
	sameFiles(t, whole, killed)
	if s := openStore(t, killed); s.Rows() != 35 || len(s.Manifest.Rejected) != 5 {
		t.Fatalf("%d rows, %d rejected", s.Rows(), len(s.Manifest.Rejected))
	}
}

// Shards K/N merged equal the single run: same captions.jsonl and manifest
// rejections, same embeddings in the same order.
func TestShardMergeEqualsSingleRun(t *testing.T) {
	root := t.TempDir()
	model := writeCLIP(t, root, tinyConfig)
	input := folderDataset(t, root, 23)
	opt := Options{Dataset: "folder", Input: input, CLIP: model, ShardSize: 4, Batch: 3, Limit: 22, Device: gotch.CPU, Stderr: io.Discard}
	single := filepath.Join(root, "single")
	opt.Out = single
	if _, err := Run(context.Background(), opt); err != nil {
		t.Fatal(err)
	}
	var parts []string
	for k := 0; k < 3; k++ {
		opt.Out, opt.ShardIndex, opt.ShardCount = filepath.Join(root, fmt.Sprint("part", k)), k, 3
		if _, err := Run(context.Background(), opt); err != nil {
			t.Fatal(err)
		}
		parts = append(parts, opt.Out)
	}
	merged := filepath.Join(root, "merged")
	if err := Merge(merged, []string{parts[2], parts[0], parts[1]}, 4, io.Discard); err != nil {
		t.Fatal(err)
	}
	a, b := openStore(t, single), openStore(t, merged)
	ca, _ := os.ReadFile(filepath.Join(single, featstore.CaptionsFile))
	cb, _ := os.ReadFile(filepath.Join(merged, featstore.CaptionsFile))
	if string(ca) != string(cb) || len(a.Captions) != 19 {
		t.Fatalf("captions.jsonl differs (%d lines vs %d)", len(a.Captions), len(b.Captions))
	}
	ra, _ := json.Marshal(a.Manifest.Rejected)
	rb, _ := json.Marshal(b.Manifest.Rejected)
	if string(ra) != string(rb) || len(a.Manifest.Rejected) != 3 || a.Manifest.Images != b.Manifest.Images {
		t.Fatalf("rejected %s vs %s", ra, rb)
	}
	x, y := make([]float32, 16), make([]float32, 16)
	worst := 0.0
	for r := 0; r < a.Rows(); r++ {
		a.Embedding(r, x)
		b.Embedding(r, y)
		worst = max(worst, maxRelDiff(y, x))
	}
	// Batches hold other images in the sharded runs; BLAS may round rows
	// differently with the batch shape, so allow float32 noise.
	if worst > 1e-5 {
		t.Fatalf("embeddings differ by %.3g", worst)
	}
	t.Logf("largest relative embedding difference %.3g", worst)
	// A part of another run is refused.
	if err := Merge(filepath.Join(root, "bad"), []string{parts[0], parts[1], single}, 4, io.Discard); err == nil {
		t.Fatal("merging a whole store as a part succeeded")
	}
}
