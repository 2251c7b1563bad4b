package featstore

import (
	"path/filepath"
	"strings"
	"testing"
)

// clip_precision and add_period are recorded, must agree for a resume and
// across merged parts, and carry over to the merged store.
func TestSettingsRecordedAndChecked(t *testing.T) {
	root := t.TempDir()
	yes, no := true, false
	meta := func(index int, add *bool, prec string) Meta {
		return Meta{CLIPModel: "m", EmbedDim: 2, ShardInputs: 3, ShardIndex: index, ShardCount: 2, AddPeriod: add, CLIPPrecision: prec}
	}
	write := func(dir string, m Meta) {
		w, err := Create(dir, m)
		if err != nil {
			t.Fatal(err)
		}
		for i := m.ShardIndex; i < 4; i += 2 {
			item := i
			if err := w.Add([]float32{1, 2}, []Caption{{ImageID: "x", Caption: "c.", Item: &item}}); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// An interrupted store resumes only with the same settings.
	part := filepath.Join(root, "p0")
	w0, err := Create(part, meta(0, &yes, "fp16"))
	if err != nil {
		t.Fatal(err)
	}
	w0.Abort() // as a killed run would: its lock goes with it
	for _, m := range []Meta{meta(0, &no, "fp16"), meta(0, nil, "fp16"), meta(0, &yes, "")} {
		if _, err := Create(part, m); err == nil || !strings.Contains(err.Error(), "other settings") {
			t.Errorf("resume with add_period %v precision %q: %v", m.AddPeriod, m.CLIPPrecision, err)
		}
	}
	write(part, meta(0, &yes, "fp16"))
	write(filepath.Join(root, "p1"), meta(1, &yes, "fp16"))
	write(filepath.Join(root, "q1"), meta(1, &no, "fp16"))
	if _, err := Merge(filepath.Join(root, "bad"), []string{part, filepath.Join(root, "q1")}, 3); err == nil || !strings.Contains(err.Error(), "add_period") {
		t.Errorf("merging parts with different add_period: %v", err)
	}
	m, err := Merge(filepath.Join(root, "out"), []string{part, filepath.Join(root, "p1")}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if m.AddPeriod == nil || !*m.AddPeriod || m.CLIPPrecision != "fp16" {
		t.Fatalf("merged manifest add_period %v precision %q", m.AddPeriod, m.CLIPPrecision)
	}
}
