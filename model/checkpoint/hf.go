package checkpoint

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/clipcap/clipcap/model/clipcap"
	"github.com/clipcap/clipcap/model/gpt2"
	"github.com/clipcap/clipcap/model/nn"
)

// isSafetensors sniffs the safetensors layout: a little-endian header length
// followed by a JSON object.
func isSafetensors(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return strings.HasSuffix(path, ".safetensors")
	}
	defer f.Close()
	var hdr [9]byte
	if _, err := io.ReadFull(f, hdr[:]); err != nil {
		return false
	}
	n := binary.LittleEndian.Uint64(hdr[:8])
	return n > 1 && n < 100<<20 && hdr[8] == '{'
}

// HFGPT2File finds the weights file of a HuggingFace GPT-2 directory
// (model.safetensors, else pytorch_model.bin), or returns path itself when
// it is a file.
func HFGPT2File(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if !st.IsDir() {
		return path, nil
	}
	for _, n := range []string{"model.safetensors", "pytorch_model.bin"} {
		p := filepath.Join(path, n)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: no model.safetensors or pytorch_model.bin", path)
}

// ReadGPT2Config reads a HuggingFace config.json.
func ReadGPT2Config(path string) (gpt2.Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return gpt2.Config{}, err
	}
	c, err := gpt2.ParseConfig(data)
	if err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// hfRename maps our "gpt.transformer.*" names onto a HuggingFace GPT-2
// checkpoint, which names them "transformer.*" (GPT2LMHeadModel) or bare
// (GPT2Model); names outside GPT-2 are not in such files.
func hfRename(bare bool) func(string) string {
	return func(name string) string {
		if !strings.HasPrefix(name, "gpt.transformer.") {
			return ""
		}
		if bare {
			return strings.TrimPrefix(name, "gpt.transformer.")
		}
		return strings.TrimPrefix(name, "gpt.")
	}
}

// ignoredHF are tensors of HF GPT-2 files with no weights of ours.
func ignoredHF(name string) bool {
	return name == "lm_head.weight" || strings.HasSuffix(name, ".attn.bias") || strings.HasSuffix(name, ".attn.masked_bias")
}

// LoadHFGPT2 copies HuggingFace GPT-2 weights (model.safetensors or
// pytorch_model.bin, with or without the "transformer." prefix) into m's
// GPT-2. The mapper is left as it is.
func LoadHFGPT2(m *clipcap.Model, path string) error {
	file, err := HFGPT2File(path)
	if err != nil {
		return err
	}
	src, err := Open(file)
	if err != nil {
		return err
	}
	defer src.Close()
	bare := true
	for _, n := range src.Names() {
		if strings.HasPrefix(n, "transformer.") {
			bare = false
			break
		}
	}
	isGPT := func(n string) bool { return !strings.HasPrefix(n, "gpt.") }
	unused, err := nn.LoadInto(m.Store, src, file, hfRename(bare), isGPT)
	if err != nil {
		return err
	}
	if extra := filterOut(unused, ignoredHF); len(extra) > 0 {
		return fmt.Errorf("%s: tensors GPT-2 has no place for: %v", file, head(extra, 5))
	}
	return nil
}

// jsonIndent is a small helper for writing JSON files.
func jsonIndent(v any) []byte {
	b, _ := json.MarshalIndent(v, "", "  ")
	return append(b, '\n')
}
