package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clipcap/clipcap/data/tokenizer"
	"github.com/clipcap/clipcap/model/checkpoint"
	"github.com/clipcap/clipcap/model/generate"
)

// runStderr runs the CLI in-process and returns its exit code and stderr.
func runStderr(t *testing.T, args ...string) (int, string) {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stderr
	os.Stderr = f
	rc := run(args)
	os.Stderr = saved
	f.Close()
	b, _ := os.ReadFile(f.Name())
	return rc, string(b)
}

// import --from official: the transformer variant without a stated
// normalisation warns, naming the flag; --no-normalize-prefix silences it,
// --normalize-prefix records the choice; the MLP variant says nothing. The
// model directory decodes with predict.py's default (greedy, ".", 67).
func TestImportOfficialNormalizeWarningAndGeneration(t *testing.T) {
	if _, err := tokenizer.LoadDefault(); err != nil {
		t.Skipf("GPT-2 tokenizer files not installed (scripts/setup.sh fetches them): %v", err)
	}
	fixtures := filepath.Join("..", "..", "model", "clipcap", "testdata")
	for _, tc := range []struct {
		kind, flag string
		warn, norm bool
	}{
		{"transformer", "", true, false},
		{"transformer", "--no-normalize-prefix", false, false},
		{"transformer", "--normalize-prefix", false, true},
		{"mlp", "", false, false},
	} {
		dir := filepath.Join(t.TempDir(), "m")
		args := []string{"import", "--from", "official", "--checkpoint", filepath.Join(fixtures, "official_"+tc.kind+".pt"),
			"--gpt2-config", filepath.Join(fixtures, "gpt2_config.json"), "--out", dir}
		if tc.flag != "" {
			args = append(args, tc.flag)
		}
		rc, stderr := runStderr(t, args...)
		if rc != 0 {
			t.Fatalf("%s %s: exit %d: %s", tc.kind, tc.flag, rc, stderr)
		}
		if warned := strings.Contains(stderr, "warning:") && strings.Contains(stderr, "--normalize-prefix"); warned != tc.warn {
			t.Errorf("%s %s: warned %v, want %v; stderr:\n%s", tc.kind, tc.flag, warned, tc.warn, stderr)
		}
		cfg, err := checkpoint.ReadDirConfig(dir)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Model.NormalizePrefix != tc.norm {
			t.Errorf("%s %s: normalize_prefix %v, want %v", tc.kind, tc.flag, cfg.Model.NormalizePrefix, tc.norm)
		}
		g := cfg.Generation.WithDefaults()
		if g.Strategy != generate.Greedy || g.MaxTokens != 67 || len(g.StopTokens) != 1 || g.StopTokens[0] != 13 {
			t.Errorf("%s: generation %+v, want predict.py's greedy, stop 13, 67 tokens", tc.kind, cfg.Generation)
		}
	}
	rc, _ := runStderr(t, "import", "--from", "official", "--checkpoint", filepath.Join(fixtures, "official_mlp.pt"),
		"--normalize-prefix", "--no-normalize-prefix", "--out", filepath.Join(t.TempDir(), "x"))
	if rc == 0 {
		t.Error("--normalize-prefix with --no-normalize-prefix succeeded")
	}
}

// import --from hf-clip takes a Hugging Face directory and records the
// tower's head count and activation, which its config.json gave, in the
// model directory; embed reads the same directory directly.
func TestImportHFCLIPDirectory(t *testing.T) {
	if _, err := tokenizer.LoadDefault(); err != nil {
		t.Skipf("GPT-2 tokenizer files not installed (scripts/setup.sh fetches them): %v", err)
	}
	fixtures := filepath.Join("..", "..", "model", "clipcap", "testdata")
	hf := filepath.Join("..", "..", "model", "clip", "testdata", "arch", "hf_gelu")
	dir := filepath.Join(t.TempDir(), "m")
	if rc, stderr := runStderr(t, "import", "--from", "hf-gpt2", "--checkpoint", filepath.Join(fixtures, "hf_gpt2.safetensors"),
		"--gpt2-config", filepath.Join(fixtures, "gpt2_config.json"), "--clip-dim", "16", "--prefix-length", "3", "--out", dir); rc != 0 {
		t.Fatalf("import --from hf-gpt2: %s", stderr)
	}
	rc, stderr := runStderr(t, "import", "--from", "hf-clip", "--checkpoint", hf, "--out", dir)
	if rc != 0 {
		t.Fatalf("import --from hf-clip DIR: %s", stderr)
	}
	if !strings.Contains(stderr, "hf_gelu/config.json") {
		t.Errorf("import did not say where the architecture came from:\n%s", stderr)
	}
	cfg, err := checkpoint.ReadDirConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CLIP.Heads != 4 || cfg.CLIP.Activation != "gelu" || cfg.CLIP.Weights == "" {
		t.Fatalf("clip section %+v, want 4 heads, gelu, weights", cfg.CLIP)
	}
	out := filepath.Join(t.TempDir(), "e.npy")
	img := filepath.Join("..", "..", "model", "clip", "testdata", "images", "grad_61x45.png")
	if rc, stderr := runStderr(t, "embed", "--clip", hf, "--device", "cpu", "--image", img, "--out", out); rc != 0 {
		t.Fatalf("embed --clip DIR: %s", stderr)
	}
}
