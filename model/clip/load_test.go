package clip

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sugarme/gotch"

	"github.com/clipcap/clipcap/internal/tensorfile"
)

// rewrite copies a fixture's tensors through edit into a new file, written
// as safetensors or (with a .pt name) a torch.save archive.
func rewrite(t *testing.T, from, to string, edit func(map[string]tensorfile.RawTensor)) string {
	t.Helper()
	sf, err := tensorfile.OpenSafetensors(filepath.Join("testdata", from))
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	m := map[string]tensorfile.RawTensor{}
	for _, n := range sf.Names() {
		rt, err := sf.Tensor(n)
		if err != nil {
			t.Fatal(err)
		}
		rt.Data = append([]byte(nil), rt.Data...)
		m[n] = rt
	}
	edit(m)
	path := filepath.Join(t.TempDir(), to)
	if strings.HasSuffix(to, ".pt") {
		err = tensorfile.WriteTorch(path, m)
	} else {
		err = tensorfile.WriteSafetensors(path, m, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// renamePrefix keeps only the names under from, moved under to.
func renamePrefix(m map[string]tensorfile.RawTensor, from, to string) {
	old := map[string]tensorfile.RawTensor{}
	for n, v := range m {
		old[n] = v
		delete(m, n)
	}
	for n, v := range old {
		if rest, ok := strings.CutPrefix(n, from); ok {
			m[to+rest] = v
		}
	}
}

// A torch.save'd checkpoint nesting the tower elsewhere, and a bare
// model.visual state dict, load to the same embeddings.
func TestLoadPrefixes(t *testing.T) {
	f := fixtures[1]
	want := readF32(t, "rn_out.bin")
	for _, tc := range []struct{ file, prefix string }{
		{"nested.pt", "state_dict.model.visual."},
		{"bare.safetensors", ""},
	} {
		path := rewrite(t, "rn.safetensors", tc.file, func(m map[string]tensorfile.RawTensor) {
			renamePrefix(m, "visual.", tc.prefix)
		})
		m, _, err := Load(path, gotch.CPU)
		if err != nil {
			t.Fatal(err)
		}
		assertClose(t, tc.file, encodeFixture(t, m, f), want, 1e-4)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.bin")
	os.WriteFile(garbage, []byte("this is not a checkpoint at all"), 0o644)
	cases := map[string]struct {
		path, want string
	}{
		"missing file": {filepath.Join(dir, "nope.pt"), "no such file"},
		"garbage":      {garbage, "neither safetensors nor"},
		"not clip": {rewrite(t, "rn.safetensors", "gpt.safetensors", func(m map[string]tensorfile.RawTensor) {
			renamePrefix(m, "transformer.", "transformer.") // the text tower only
		}), "no CLIP image tower"},
		"extra block tensor": {rewrite(t, "vit.safetensors", "extra.safetensors", func(m map[string]tensorfile.RawTensor) {
			m["visual.transformer.resblocks.7.ln_1.weight"] = m["visual.ln_pre.weight"]
		}), "resblocks.7.ln_1.weight"},
		"missing tensor": {rewrite(t, "rn.safetensors", "missing.safetensors", func(m map[string]tensorfile.RawTensor) {
			delete(m, "visual.layer2.0.bn2.running_var")
		}), "visual.layer2.0.bn2.running_var"},
		"wrong shape": {rewrite(t, "vit.safetensors", "shape.safetensors", func(m map[string]tensorfile.RawTensor) {
			m["visual.ln_post.bias"] = m["visual.proj"]
		}), "visual.ln_post.bias"},
		"hf without projection": {rewrite(t, "vit_hf.safetensors", "noproj.safetensors", func(m map[string]tensorfile.RawTensor) {
			delete(m, "visual_projection.weight")
		}), "CLIPVisionModelWithProjection"},
		"hf missing v": {rewrite(t, "vit_hf.safetensors", "nov.safetensors", func(m map[string]tensorfile.RawTensor) {
			delete(m, "vision_model.encoder.layers.1.self_attn.v_proj.bias")
		}), "layers.1.self_attn.v_proj.bias"},
		"hf unknown tensor": {rewrite(t, "vit_hf.safetensors", "unk.safetensors", func(m map[string]tensorfile.RawTensor) {
			m["vision_model.encoder.layers.0.self_attn.rotary.weight"] = m["visual_projection.weight"]
		}), "rotary"},
	}
	for name, c := range cases {
		_, _, err := Load(c.path, gotch.CPU)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", name, err, c.want)
		}
	}
}
