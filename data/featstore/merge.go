package featstore

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
)

// event is one input of a part: a stored image (row >= 0, its captions) or a
// rejected input.
type event struct {
	item int
	part int
	row  int
	caps []Caption
	rej  Rejected
}

// Merge joins the stores of a `--shard K/N` extraction (all N parts, in any
// order) into one store at out, in the dataset's item order, so the result
// equals what one unsharded run with the same shard size writes. Each part
// must be complete, pass Verify, carry item indices, and agree with the
// others on CLIP model, preprocessing, embedding width, dtype and dataset.
// An interrupted merge resumes like an extraction.
func Merge(out string, parts []string, shardInputs int) (Manifest, error) {
	if len(parts) == 0 {
		return Manifest{}, fmt.Errorf("merge: no parts")
	}
	var stores []*Store
	defer func() {
		for _, s := range stores {
			s.Close()
		}
	}()
	seen := map[int]string{}
	var events []event
	total := 0
	for k, dir := range parts {
		s, err := Verify(dir)
		if err != nil {
			return Manifest{}, fmt.Errorf("merge: %w", err)
		}
		stores = append(stores, s)
		m, m0 := s.Manifest, stores[0].Manifest
		if m.ShardCount != len(parts) {
			return Manifest{}, fmt.Errorf("merge: %s is shard %d/%d, but %d parts were given", dir, m.ShardIndex, m.ShardCount, len(parts))
		}
		if prev, dup := seen[m.ShardIndex]; dup {
			return Manifest{}, fmt.Errorf("merge: %s and %s are both shard %d/%d", prev, dir, m.ShardIndex, m.ShardCount)
		}
		seen[m.ShardIndex] = dir
		if !sameSettings(m, m0) {
			return Manifest{}, fmt.Errorf("merge: %s (clip_precision %q, add_period %v) does not match %s (clip_precision %q, add_period %v)",
				dir, m.CLIPPrecision, fmtBool(m.AddPeriod), parts[0], m0.CLIPPrecision, fmtBool(m0.AddPeriod))
		}
		if m.CLIPModel != m0.CLIPModel || m.EmbedDim != m0.EmbedDim || m.Dtype != m0.Dtype || m.Preprocess != m0.Preprocess || m.Dataset != m0.Dataset {
			return Manifest{}, fmt.Errorf("merge: %s (%s, dim %d, %s, %s, dataset %q) does not match %s (%s, dim %d, %s, %s, dataset %q)",
				dir, m.CLIPModel, m.EmbedDim, m.Dtype, m.Preprocess, m.Dataset, parts[0], m0.CLIPModel, m0.EmbedDim, m0.Dtype, m0.Preprocess, m0.Dataset)
		}
		if d := m0.Inputs.Diff(m.Inputs); d != nil {
			return Manifest{}, fmt.Errorf("merge: %s was extracted from other inputs than %s (%s)", dir, parts[0], strings.Join(d, "; "))
		}
		evs, err := partEvents(s, k)
		if err != nil {
			return Manifest{}, err
		}
		events = append(events, evs...)
		total += m.InputsDone
	}
	n := len(parts)
	for _, s := range stores {
		m := s.Manifest
		if want := (total - m.ShardIndex + n - 1) / n; m.InputsDone != want {
			return Manifest{}, fmt.Errorf("merge: %s covers %d inputs; with %d inputs in all, shard %d/%d should cover %d (a part of another extraction?)",
				s.Dir, m.InputsDone, total, m.ShardIndex, n, want)
		}
	}
	sort.Slice(events, func(a, b int) bool { return events[a].item < events[b].item })
	for i, e := range events {
		if e.item != i || e.item%n != stores[e.part].Manifest.ShardIndex {
			return Manifest{}, fmt.Errorf("merge: %s holds item %d, which is not its shard's item %d", parts[e.part], e.item, i)
		}
	}

	m0 := stores[0].Manifest
	w, err := Create(out, Meta{CLIPModel: m0.CLIPModel, Preprocess: m0.Preprocess, Dataset: m0.Dataset,
		EmbedDim: m0.EmbedDim, Float16: m0.Dtype == "F16", ShardInputs: shardInputs,
		CLIPPrecision: m0.CLIPPrecision, AddPeriod: m0.AddPeriod, Inputs: m0.Inputs})
	if err != nil {
		return Manifest{}, fmt.Errorf("merge: %w", err)
	}
	defer w.Abort()
	emb := make([]float32, m0.EmbedDim)
	for _, e := range events[w.InputsDone():] {
		if e.row < 0 {
			err = w.RejectEntry(e.rej)
		} else if err = stores[e.part].Embedding(e.row, emb); err == nil {
			err = w.Add(emb, e.caps)
		}
		if err != nil {
			return Manifest{}, fmt.Errorf("merge: %w", err)
		}
	}
	if err := w.Close(); err != nil {
		return Manifest{}, fmt.Errorf("merge: %w", err)
	}
	return w.man, nil
}

// partEvents lists a part's inputs with their item indices: one per
// embedding row (found through its captions) and one per rejected input.
func partEvents(s *Store, part int) ([]event, error) {
	rows := make([]event, s.Rows())
	for i := range rows {
		rows[i] = event{item: -1, part: part, row: i}
	}
	for line, c := range s.Captions {
		if c.Item == nil {
			return nil, fmt.Errorf("merge: %s line %d has no \"item\" index (written by another tool?)", filepath.Join(s.Dir, CaptionsFile), line+1)
		}
		r := &rows[c.Embedding]
		if r.item >= 0 && r.item != *c.Item {
			return nil, fmt.Errorf("merge: %s line %d: row %d belongs to items %d and %d", filepath.Join(s.Dir, CaptionsFile), line+1, c.Embedding, r.item, *c.Item)
		}
		r.item = *c.Item
		r.caps = append(r.caps, c)
	}
	events := rows
	for i, r := range rows {
		if r.item < 0 {
			return nil, fmt.Errorf("merge: %s: embedding row %d has no caption line, so its item is unknown", s.Dir, i)
		}
	}
	for _, rj := range s.Manifest.Rejected {
		if rj.Item == nil {
			return nil, fmt.Errorf("merge: %s: rejected input %s has no item index", s.Dir, rj.Input)
		}
		events = append(events, event{item: *rj.Item, part: part, row: -1, rej: rj})
	}
	if len(events) != s.Manifest.InputsDone {
		return nil, fmt.Errorf("merge: %s: %d rows and rejected inputs, but the manifest counts %d inputs", s.Dir, len(events), s.Manifest.InputsDone)
	}
	return events, nil
}

func fmtBool(b *bool) string {
	if b == nil {
		return "unset"
	}
	return fmt.Sprint(*b)
}
