// Package featstore is the feature store: pre-extracted CLIP image
// embeddings plus their captions, the input of training and evaluation.
//
// A store is a directory:
//
//	manifest.json          CLIP model, preprocessing, counts, shard checksums, rejected inputs
//	captions.jsonl         one caption per line: image_id, caption, embedding row, split (+ domain)
//	emb-00000.safetensors  embedding shards, tensor "embeddings" [rows, dim], F32 or F16
//	lock                   flock(2)ed by the one writer (extract, merge) while it runs
//	verified.json          size, mtime and sha256 of each shard at its last full check
//
// Shards are memory-mapped when read, after a check of their sha256 against
// the manifest (skipped for a shard whose size and mtime match
// verified.json; Verify always hashes). Every file is written atomically, so
// a killed writer leaves either the old or the new state, never a torn one.
package featstore

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/clipcap/clipcap/internal/tensorfile"
)

// File names inside a store.
const (
	ManifestFile = "manifest.json"
	CaptionsFile = "captions.jsonl"
	TensorName   = "embeddings"
)

// Manifest describes a store.
type Manifest struct {
	Version    int    `json:"version"`
	CLIPModel  string `json:"clip_model"`
	EmbedDim   int    `json:"embed_dim"`
	Dtype      string `json:"dtype"` // F32 or F16
	Preprocess string `json:"preprocess"`
	Dataset    string `json:"dataset,omitempty"`
	// CLIPPrecision is "fp16" when CLIP ran in half precision (extract
	// --half, as the original's parse_coco.py on CUDA), "" for float32.
	CLIPPrecision string `json:"clip_precision,omitempty"`
	// AddPeriod says whether captions got the original's trailing period
	// (Conceptual Captions' add_period); absent for other datasets.
	AddPeriod *bool      `json:"add_period,omitempty"`
	Images    int        `json:"images"`
	Captions  int        `json:"captions"`
	Shards    []Shard    `json:"shards"`
	Rejected  []Rejected `json:"rejected"`
	// Shard K of N of a distributed extraction; zero for a whole store.
	ShardIndex int `json:"shard_index,omitempty"`
	ShardCount int `json:"shard_count,omitempty"`
	// InputsDone counts the inputs (stored or rejected) covered by the
	// committed shards: a resumed extraction skips that many.
	InputsDone int  `json:"inputs_done"`
	Complete   bool `json:"complete"`
	// Inputs fingerprints what the extraction read; a resumed run with
	// other inputs is refused. Absent in stores written before it existed.
	Inputs *Inputs `json:"inputs,omitempty"`
}

// Shard is one embeddings file.
type Shard struct {
	File   string `json:"file"`
	Rows   int    `json:"rows"`
	SHA256 string `json:"sha256"`
}

// Rejected is an input that was skipped, with the reason.
type Rejected struct {
	Input  string `json:"input"`
	Reason string `json:"reason"`
	Item   *int   `json:"item,omitempty"` // as Caption.Item
}

// Caption is one line of captions.jsonl.
type Caption struct {
	ImageID   string `json:"image_id"`
	Caption   string `json:"caption"`
	Embedding int    `json:"embedding"` // row in the concatenated shards
	Split     string `json:"split,omitempty"`
	Domain    string `json:"domain,omitempty"` // nocaps: in-domain, near-domain, out-domain
	Image     string `json:"image,omitempty"`  // source path or URL
	// Item is the image's index in the dataset's ordered item list, so a
	// merge of --shard K/N runs can restore the single-run order.
	Item *int `json:"item,omitempty"`
}

// Store is an opened feature store.
type Store struct {
	Dir      string
	Manifest Manifest
	Captions []Caption
	shards   []*tensorfile.SafetensorsFile
	starts   []int // first row of each shard
}

// Open reads a store, checking that the manifest, captions and shards agree
// and that no shard changed since it was written (see verified.json above).
func Open(dir string) (*Store, error) { return open(dir, false) }

// Verify is Open with every shard hashed, whatever verified.json says
// (`--verify`).
func Verify(dir string) (*Store, error) { return open(dir, true) }

func open(dir string, full bool) (*Store, error) {
	s := &Store{Dir: dir}
	mpath := filepath.Join(dir, ManifestFile)
	data, err := os.ReadFile(mpath)
	if err != nil {
		return nil, fmt.Errorf("feature store %s: %w", dir, err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s.Manifest); err != nil {
		return nil, fmt.Errorf("%s: %w", mpath, err)
	}
	if s.Manifest.Version != 1 {
		return nil, fmt.Errorf("%s: version %d is not supported (want 1)", mpath, s.Manifest.Version)
	}
	if !s.Manifest.Complete {
		return nil, fmt.Errorf("feature store %s is incomplete (its extraction is running or was interrupted; rerun extract to resume)", dir)
	}
	if err := checkShards(dir, s.Manifest.Shards, full); err != nil {
		return nil, err
	}
	rows := 0
	for _, sh := range s.Manifest.Shards {
		p := filepath.Join(dir, sh.File)
		f, err := tensorfile.OpenSafetensors(p)
		if err != nil {
			s.Close()
			return nil, err
		}
		dt, shape, ok := f.Info(TensorName)
		if !ok || len(shape) != 2 || shape[0] != int64(sh.Rows) || shape[1] != int64(s.Manifest.EmbedDim) || (dt != tensorfile.F32 && dt != tensorfile.F16) {
			f.Close()
			s.Close()
			return nil, fmt.Errorf("%s: want tensor %q F32/F16 [%d, %d], have %s %v", p, TensorName, sh.Rows, s.Manifest.EmbedDim, dt, shape)
		}
		s.shards = append(s.shards, f)
		s.starts = append(s.starts, rows)
		rows += sh.Rows
	}
	caps, err := readCaptions(filepath.Join(dir, CaptionsFile))
	if err != nil {
		s.Close()
		return nil, err
	}
	for i, c := range caps {
		if c.Embedding < 0 || c.Embedding >= rows {
			s.Close()
			return nil, fmt.Errorf("%s line %d: embedding row %d outside the store's %d rows", filepath.Join(dir, CaptionsFile), i+1, c.Embedding, rows)
		}
	}
	s.Captions = caps
	return s, nil
}

func readCaptions(path string) ([]Caption, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Caption
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var c Caption
		if err := json.Unmarshal(b, &c); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, line, err)
		}
		out = append(out, c)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

// Rows is the number of embeddings.
func (s *Store) Rows() int {
	n := 0
	for _, sh := range s.Manifest.Shards {
		n += sh.Rows
	}
	return n
}

// Dim is the embedding width.
func (s *Store) Dim() int { return s.Manifest.EmbedDim }

// Embedding copies row r into dst (len Dim) as float32.
func (s *Store) Embedding(r int, dst []float32) error {
	if r < 0 || r >= s.Rows() {
		return fmt.Errorf("feature store %s: row %d out of range [0, %d)", s.Dir, r, s.Rows())
	}
	k := len(s.starts) - 1
	for k > 0 && s.starts[k] > r {
		k--
	}
	local := r - s.starts[k]
	f := s.shards[k]
	dt, _, _ := f.Info(TensorName)
	b := f.Bytes(TensorName)
	d := s.Dim()
	switch dt {
	case tensorfile.F32:
		v, err := tensorfile.ToFloat32(dt, b[local*d*4:(local+1)*d*4])
		if err != nil {
			return err
		}
		copy(dst, v)
	default:
		v, err := tensorfile.ToFloat32(dt, b[local*d*2:(local+1)*d*2])
		if err != nil {
			return err
		}
		copy(dst, v)
	}
	return nil
}

// Split returns the captions of a split ("" = all).
func (s *Store) Split(name string) []Caption {
	if name == "" {
		return s.Captions
	}
	var out []Caption
	for _, c := range s.Captions {
		if c.Split == name {
			out = append(out, c)
		}
	}
	return out
}

// Close unmaps the shards.
func (s *Store) Close() error {
	for _, f := range s.shards {
		f.Close()
	}
	s.shards = nil
	return nil
}
