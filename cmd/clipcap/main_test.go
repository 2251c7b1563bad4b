package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clipcap/clipcap/data/tokenizer"
	"github.com/clipcap/clipcap/model/checkpoint"
)

// The CLI contract's commands (README), each with --help.
var contract = []string{"embed", "extract", "train", "caption", "eval", "score", "import", "export", "tokenize", "download", "live", "serve", "doctor"}

func TestEveryCommandHasHelp(t *testing.T) {
	stderr := os.Stderr
	os.Stderr, _ = os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	defer func() { os.Stderr = stderr }()
	for _, name := range contract {
		if _, ok := commands[name]; !ok {
			t.Errorf("command %q is not registered", name)
			continue
		}
		if rc := run([]string{name, "--help"}); rc != 0 {
			t.Errorf("clipcap %s --help exited %d", name, rc)
		}
	}
	if rc := run([]string{"no-such-command"}); rc != 2 {
		t.Errorf("unknown command exited %d, want 2", rc)
	}
	if rc := run([]string{"caption", "--model"}); rc == 0 {
		t.Errorf("caption with a missing flag value succeeded")
	}
}

func TestImportHFGPT2AndExport(t *testing.T) {
	if _, err := tokenizer.LoadDefault(); err != nil {
		t.Skipf("GPT-2 tokenizer files not installed (scripts/setup.sh fetches them): %v", err)
	}
	fixtures := filepath.Join("..", "..", "model", "clipcap", "testdata")
	dir := filepath.Join(t.TempDir(), "model")
	rc := run([]string{"import", "--from", "hf-gpt2", "--checkpoint", filepath.Join(fixtures, "hf_gpt2.safetensors"),
		"--gpt2-config", filepath.Join(fixtures, "gpt2_config.json"), "--clip-dim", "16", "--prefix-length", "3", "--out", dir})
	if rc != 0 {
		t.Fatalf("import --from hf-gpt2 exited %d", rc)
	}
	cfg, err := checkpoint.ReadDirConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Model.Mapper.PrefixLength != 3 || cfg.Model.Mapper.ClipDim != 16 || cfg.Model.GPT2.NEmbd != 32 {
		t.Fatalf("imported config %+v", cfg.Model)
	}
	out := filepath.Join(t.TempDir(), "gpt2.json")
	if rc := run([]string{"export", "--model", dir, "--format", "gpt2-config", "--out", out}); rc != 0 {
		t.Fatalf("export gpt2-config exited %d", rc)
	}
	g, err := checkpoint.ReadGPT2Config(out)
	if err != nil || g != cfg.Model.GPT2 {
		t.Fatalf("exported GPT-2 config %+v (%v), want %+v", g, err, cfg.Model.GPT2)
	}
	if rc := run([]string{"export", "--model", dir, "--format", "safetensors", "--out", out}); rc == 0 {
		t.Errorf("export --format safetensors into a .json file succeeded")
	}
	i8 := filepath.Join(t.TempDir(), "int8")
	if rc := run([]string{"export", "--model", dir, "--precision", "int8", "--out", i8}); rc != 0 {
		t.Fatalf("export --precision int8 exited %d", rc)
	}
	if c, err := checkpoint.ReadDirConfig(i8); err != nil || c.WeightsPrecision != "int8" || c.Generation.Precision != "int8" {
		t.Errorf("int8 export's config: %+v, %v", c, err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, checkpoint.ConfigFile))
	if !strings.Contains(string(data), "prefix_length: 3") {
		t.Errorf("config.yaml lacks the prefix length:\n%s", data)
	}
}

// Usage errors exit 2 and are said once (no flag-package dump, no second
// copy from run), with where to find the flags.
func TestUsageErrorsExit2Once(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := os.Stderr
	os.Stderr = w
	codes := []int{
		run([]string{"caption", "--no-such-flag"}),
		run([]string{"serve"}),
		run([]string{"caption", "--model", "m", "--image", "x.png", "--strategy", "nucleus"}),
	}
	os.Stderr = stderr
	w.Close()
	out, _ := io.ReadAll(r)
	for i, rc := range codes {
		if rc != 2 {
			t.Errorf("case %d exited %d, want 2", i, rc)
		}
	}
	text := string(out)
	if strings.Count(text, "no-such-flag") != 1 || strings.Count(text, "--model is required") != 1 || strings.Count(text, "nucleus") != 1 {
		t.Errorf("each error should be said exactly once:\n%s", text)
	}
	if strings.Contains(text, "Usage:") || !strings.Contains(text, "Run 'clipcap serve --help'") {
		t.Errorf("want no usage dump, and a pointer to --help:\n%s", text)
	}
}
