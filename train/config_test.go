package train

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeYAML(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	cases := []struct {
		yaml string
		sets []string
		key  string
	}{
		{"data: s\nbatch_size: 4\n", nil, "batch_size"},        // unknown YAML key
		{"data: s\nbs: four\n", nil, "bs"},                     // wrong type in YAML
		{"data: s\nbs: 0\n", nil, "bs"},                        // bad value
		{"data: s\nmapping_type: lstm\n", nil, "mapping_type"}, //
		{"data: s\n", []string{"lr=-1"}, "lr"},                 //
		{"data: s\n", []string{"epochz=3"}, "epochz"},          // --set unknown key
		{"data: s\n", []string{"epochs=three"}, "epochs"},      // --set bad value
		{"data: s\n", []string{"only_prefix=maybe"}, "only_prefix"},
		{"data: s\n", []string{"max_tokens=lots"}, "max_tokens"},
		{"data: s\n", []string{"dropout=1.5"}, "dropout"},
		{"data: s\n", []string{"device=tpu"}, "device"},
		{"data: s\n", []string{"dist_bucket_mb=0"}, "dist_bucket_mb"},
		{"data: s\n", []string{"dist_overlap=maybe"}, "dist_overlap"},
		{"data: s\n", []string{"dist_timeout=-3s"}, "dist_timeout"},
		{"bs: 8\n", nil, "data"},
	}
	for _, c := range cases {
		_, err := LoadConfig(writeYAML(t, c.yaml), c.sets)
		if err == nil || !strings.Contains(err.Error(), c.key) {
			t.Errorf("yaml %q sets %v: error %v does not name %q", c.yaml, c.sets, err, c.key)
		}
	}
}

func TestConfigOverridesAndPresets(t *testing.T) {
	c, err := LoadConfig(writeYAML(t, "data: s\nbs: 8\n"), []string{"bs=16", "lr=1e-4", "only_prefix=true", "max_tokens=20"})
	if err != nil {
		t.Fatal(err)
	}
	if c.BS != 16 || c.LR != 1e-4 || !c.OnlyPrefix || c.MaxTokens != "20" || c.Epochs != 10 {
		t.Errorf("config %+v", c)
	}
	// Every preset parses and describes a valid model.
	presets, _ := filepath.Glob("../configs/*.yaml")
	if len(presets) < 6 {
		t.Fatalf("found %d presets in configs/", len(presets))
	}
	for _, p := range presets {
		c, err := LoadConfig(p, []string{"data=s"})
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		dim := int64(512)
		if strings.Contains(p, "rn50x4") {
			dim = 640
		}
		mc, err := c.ModelConfig(dim)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if strings.Contains(p, "coco_") && strings.Contains(p, "transformer") && !(mc.FreezeGPT2 && mc.Mapper.PrefixLength == mc.Mapper.ClipLength) {
			t.Errorf("%s: transformer preset should freeze GPT-2: %+v", p, mc)
		}
	}
	if c, _ := LoadConfig("../configs/coco_mlp.yaml", []string{"data=s"}); c.BS != 40 || c.LR != 2e-5 || c.WarmupSteps != 5000 || c.PrefixLength != 10 || c.Epochs != 10 {
		t.Errorf("coco_mlp: %+v", c)
	}
}

func TestAutoMaxLen(t *testing.T) {
	// lengths 1..5 and one of 40: mean 55/6, unbiased std 14.8..., so
	// mean+10·std exceeds the longest caption and the cap is 40.
	toks := [][]int{make([]int, 1), make([]int, 2), make([]int, 3), make([]int, 4), make([]int, 5), make([]int, 40)}
	if got := AutoMaxLen(toks); got != 40 {
		t.Errorf("AutoMaxLen = %d, want 40", got)
	}
	// Equal lengths: std 0, the cap is that length.
	if got := AutoMaxLen([][]int{make([]int, 7), make([]int, 7)}); got != 7 {
		t.Errorf("AutoMaxLen = %d, want 7", got)
	}
	// 99 captions of 10 tokens and one of 100: mean 10.9, std 9 → int(100.9) capped at 100.
	many := make([][]int, 0, 100)
	for i := 0; i < 99; i++ {
		many = append(many, make([]int, 10))
	}
	many = append(many, make([]int, 100))
	if got := AutoMaxLen(many); got != 100 {
		t.Errorf("AutoMaxLen = %d, want 100", got)
	}
	// 1000 captions of 10 tokens and one of 200: the rule cuts at 70
	// (torch: int(l.mean() + l.std()*10) == 70).
	long := make([][]int, 0, 1001)
	for i := 0; i < 1000; i++ {
		long = append(long, make([]int, 10))
	}
	long = append(long, make([]int, 200))
	if got := AutoMaxLen(long); got != 70 {
		t.Errorf("AutoMaxLen = %d, want 70", got)
	}
}
