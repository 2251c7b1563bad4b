package caption

import (
	"reflect"
	"strings"
	"testing"

	"github.com/clipcap/clipcap/internal/flagtest"
	"github.com/clipcap/clipcap/model/generate"
)

func TestLoadFlags(t *testing.T) {
	var f LoadFlags
	fs := flagtest.Parse(t, f.RegisterFlags)
	if f != (LoadFlags{Device: "auto"}) {
		t.Errorf("defaults %+v", f)
	}
	if err := fs.Parse(strings.Fields("--model m --clip ViT-B/32 --device cpu --raw-text --precision bf16")); err != nil {
		t.Fatal(err)
	}
	if f != (LoadFlags{Model: "m", CLIP: "ViT-B/32", Device: "cpu", Precision: "bf16", RawText: true}) {
		t.Errorf("parsed %+v", f)
	}
}

func TestDecodeFlags(t *testing.T) {
	parse := func(args string) (generate.Options, error) {
		var d DecodeFlags
		flagtest.Parse(t, d.RegisterFlags, strings.Fields(args)...)
		return d.Options()
	}
	// No flags: every field zero, so the model's defaults apply.
	if o, err := parse(""); err != nil || !reflect.DeepEqual(o, generate.Options{}) {
		t.Errorf("defaults %+v, %v", o, err)
	}
	o, err := parse("--strategy sample --beam 3 --max-tokens 20 --temperature 0.7 --top-k 5 --top-p 0.9 --seed 7 --stop 13,198")
	want := generate.Options{Strategy: generate.Sample, BeamSize: 3, MaxTokens: 20, Temperature: 0.7, TopK: 5, TopP: 0.9, Seed: 7, StopTokens: []int{13, 198}}
	if err != nil || !reflect.DeepEqual(o, want) {
		t.Errorf("got %+v (%v), want %+v", o, err, want)
	}
	for _, bad := range []string{"--strategy nucleus", "--stop x"} {
		if _, err := parse(bad); err == nil || !strings.HasPrefix(err.Error(), "--"+strings.Fields(bad)[0][2:]) {
			t.Errorf("%s: error %v, want one naming the flag", bad, err)
		}
	}
}

func TestImportFlags(t *testing.T) {
	parse := func(args string) ImportOptions {
		var f ImportFlags
		flagtest.Parse(t, f.RegisterFlags, strings.Fields(args)...)
		return f.Parsed()
	}
	if o := parse(""); o != (ImportOptions{MappingType: "mlp", PrefixLength: 10, ClipLength: 10, NumLayers: 8, ClipDim: 512}) {
		t.Errorf("defaults %+v", o)
	}
	o := parse("--from official --checkpoint c.pt --out m --clip-name RN50x4 --no-normalize-prefix --clip-dim 640")
	if o.From != "official" || o.Checkpoint != "c.pt" || o.Out != "m" || o.CLIPName != "RN50x4" || o.ClipDim != 640 || o.NormalizePrefix || !o.NormalizeStated {
		t.Errorf("parsed %+v", o)
	}
	if o := parse("--normalize-prefix"); !o.NormalizePrefix || !o.NormalizeStated {
		t.Errorf("--normalize-prefix: %+v", o)
	}
}
