package featstore

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/clipcap/clipcap/internal/tensorfile"
)

// Meta is what a writer records about the extraction.
type Meta struct {
	CLIPModel   string
	Preprocess  string
	Dataset     string
	EmbedDim    int
	Float16     bool
	ShardInputs int // inputs per shard (default 4096); fixes shard boundaries so reruns agree
	ShardIndex  int // --shard K/N, 0/0 for a whole run
	ShardCount  int
	// CLIPPrecision and AddPeriod are recorded as the manifest fields of
	// the same names.
	CLIPPrecision string
	AddPeriod     *bool
	Inputs        *Inputs // recorded in the manifest; a resume must match it
}

// Writer appends embeddings and captions to a store, committing a shard
// every ShardInputs inputs. A writer created on a directory holding an
// interrupted extraction with the same settings resumes after its last
// committed shard. A writer holds the store's lock (LockFile) from Create
// until Close or Abort.
type Writer struct {
	dir  string
	lock *storeLock
	man  Manifest
	meta Meta
	// pending shard
	emb      []float32
	caps     []Caption
	rejected []Rejected
	inputs   int
	rows     int // rows committed
}

func shardName(k int) string    { return fmt.Sprintf("emb-%05d.safetensors", k) }
func captionsName(k int) string { return fmt.Sprintf("captions-%05d.jsonl", k) }

// Create starts or resumes a store in dir.
func Create(dir string, meta Meta) (*Writer, error) {
	if meta.ShardInputs <= 0 {
		meta.ShardInputs = 4096
	}
	if meta.EmbedDim <= 0 {
		return nil, fmt.Errorf("feature store %s: embedding dim must be positive", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	lock, err := lockStore(dir)
	if err != nil {
		return nil, err
	}
	w, err := create(dir, meta)
	if err != nil {
		lock.release()
		return nil, err
	}
	w.lock = lock
	removeTemps(dir)
	return w, nil
}

func create(dir string, meta Meta) (*Writer, error) {
	dtype := "F32"
	if meta.Float16 {
		dtype = "F16"
	}
	w := &Writer{dir: dir, meta: meta}
	want := Manifest{Version: 1, CLIPModel: meta.CLIPModel, EmbedDim: meta.EmbedDim, Dtype: dtype,
		Preprocess: meta.Preprocess, Dataset: meta.Dataset, ShardIndex: meta.ShardIndex, ShardCount: meta.ShardCount,
		CLIPPrecision: meta.CLIPPrecision, AddPeriod: meta.AddPeriod, Shards: []Shard{}, Rejected: []Rejected{}, Inputs: meta.Inputs}
	data, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
		w.man = want
		return w, w.commitManifest()
	case err != nil:
		return nil, err
	}
	var old Manifest
	if err := json.Unmarshal(data, &old); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, ManifestFile), err)
	}
	if old.Complete {
		return nil, fmt.Errorf("feature store %s is already complete; choose another --out or remove it", dir)
	}
	if old.CLIPModel != want.CLIPModel || old.EmbedDim != want.EmbedDim || old.Dtype != want.Dtype || old.Dataset != want.Dataset ||
		old.ShardIndex != want.ShardIndex || old.ShardCount != want.ShardCount || !sameSettings(old, want) {
		return nil, fmt.Errorf("feature store %s holds an interrupted extraction with other settings (%s, dim %d, %s, dataset %q, shard %d/%d); remove it or use the same settings",
			dir, old.CLIPModel, old.EmbedDim, old.Dtype, old.Dataset, old.ShardIndex, old.ShardCount)
	}
	if d := old.Inputs.Diff(meta.Inputs); d != nil {
		return nil, diffError(dir, d)
	}
	if old.Inputs == nil {
		old.Inputs = meta.Inputs // a store from before fingerprints adopts this one
	}
	// Shard boundaries must match for a resumed run to equal an uninterrupted one.
	if len(old.Shards) > 0 && old.InputsDone != len(old.Shards)*meta.ShardInputs {
		return nil, fmt.Errorf("feature store %s was written with another shard size; use the same --shard-size", dir)
	}
	w.man = old
	for _, sh := range old.Shards {
		w.rows += sh.Rows
	}
	return w, nil
}

// sameSettings compares the manifest fields that change the stored values
// without changing their shape.
func sameSettings(a, b Manifest) bool {
	pa, pb := a.AddPeriod, b.AddPeriod
	return a.CLIPPrecision == b.CLIPPrecision && (pa == nil) == (pb == nil) && (pa == nil || *pa == *pb)
}

// InputsDone is how many inputs the committed shards cover; the caller
// skips that many of its (deterministically ordered) inputs.
func (w *Writer) InputsDone() int { return w.man.InputsDone }

// Add stores one image's embedding with its captions (their Embedding field
// is set here).
func (w *Writer) Add(emb []float32, caps []Caption) error {
	if len(emb) != w.meta.EmbedDim {
		return fmt.Errorf("feature store %s: embedding of width %d, want %d", w.dir, len(emb), w.meta.EmbedDim)
	}
	row := w.rows + len(w.emb)/w.meta.EmbedDim
	w.emb = append(w.emb, emb...)
	for _, c := range caps {
		c.Embedding = row
		w.caps = append(w.caps, c)
	}
	return w.countInput()
}

// Reject records an input that was skipped and why.
func (w *Writer) Reject(input, reason string) error {
	return w.RejectEntry(Rejected{Input: input, Reason: reason})
}

// RejectEntry is Reject with every field of the entry (e.g. its Item).
func (w *Writer) RejectEntry(r Rejected) error {
	w.rejected = append(w.rejected, r)
	return w.countInput()
}

func (w *Writer) countInput() error {
	w.inputs++
	if w.inputs >= w.meta.ShardInputs {
		return w.flush()
	}
	return nil
}

// flush commits the pending shard: embeddings, then its captions, then the
// manifest that names both (the commit point).
func (w *Writer) flush() error {
	if w.inputs == 0 {
		return nil
	}
	k := len(w.man.Shards)
	rows := len(w.emb) / w.meta.EmbedDim
	sh := Shard{File: shardName(k), Rows: rows}
	if rows > 0 {
		rt := tensorfile.RawTensor{Dtype: tensorfile.F32, Shape: []int64{int64(rows), int64(w.meta.EmbedDim)}}
		if w.meta.Float16 {
			rt.Dtype = tensorfile.F16
		}
		data, err := tensorfile.FromFloat32(rt.Dtype, w.emb)
		if err != nil {
			return err
		}
		rt.Data = data
		var buf bytes.Buffer
		if err := tensorfile.EncodeSafetensors(&buf, map[string]tensorfile.RawTensor{TensorName: rt}, map[string]string{"clip_model": w.meta.CLIPModel}); err != nil {
			return err
		}
		sum := sha256.Sum256(buf.Bytes())
		sh.SHA256 = hex.EncodeToString(sum[:])
		if err := tensorfile.WriteBytesAtomic(filepath.Join(w.dir, sh.File), buf.Bytes()); err != nil {
			return err
		}
	} else {
		sh.File = ""
	}
	var cb bytes.Buffer
	for _, c := range w.caps {
		line, _ := json.Marshal(c)
		cb.Write(line)
		cb.WriteByte('\n')
	}
	if err := tensorfile.WriteBytesAtomic(filepath.Join(w.dir, captionsName(k)), cb.Bytes()); err != nil {
		return err
	}
	w.man.Shards = append(w.man.Shards, sh)
	w.man.Rejected = append(w.man.Rejected, w.rejected...)
	w.man.InputsDone += w.inputs
	w.man.Images += rows
	w.man.Captions += len(w.caps)
	w.rows += rows
	w.emb, w.caps, w.rejected, w.inputs = w.emb[:0], nil, nil, 0
	return w.commitManifest()
}

// Abort releases the store without committing the pending inputs, as a
// killed run would; a later Create resumes after the last committed shard.
// It does nothing after Close, so callers can defer it.
func (w *Writer) Abort() { w.lock.release() }

// Close commits the last shard and finalizes the store: captions.jsonl is
// assembled from the shards' caption files, and the manifest marked complete.
// The lock is released whether or not it succeeds.
func (w *Writer) Close() error {
	defer w.Abort()
	if err := w.flush(); err != nil {
		return err
	}
	var all bytes.Buffer
	var shards []Shard
	for k, sh := range w.man.Shards {
		data, err := os.ReadFile(filepath.Join(w.dir, captionsName(k)))
		if err != nil {
			return fmt.Errorf("feature store %s: %w", w.dir, err)
		}
		all.Write(data)
		if sh.Rows > 0 {
			shards = append(shards, sh)
		}
	}
	if err := tensorfile.WriteBytesAtomic(filepath.Join(w.dir, CaptionsFile), all.Bytes()); err != nil {
		return err
	}
	// Shards that only held rejected inputs carry no file.
	w.man.Shards = shards
	w.man.Complete = true
	if err := w.commitManifest(); err != nil {
		return err
	}
	for k := 0; ; k++ {
		if err := os.Remove(filepath.Join(w.dir, captionsName(k))); err != nil {
			break
		}
	}
	return nil
}

func (w *Writer) commitManifest() error {
	data, err := json.MarshalIndent(w.man, "", "  ")
	if err != nil {
		return err
	}
	return tensorfile.WriteBytesAtomic(filepath.Join(w.dir, ManifestFile), append(data, '\n'))
}
