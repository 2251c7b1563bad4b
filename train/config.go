// Package train trains ClipCap over a feature store: the trainer loop with
// HuggingFace's AdamW and linear warmup schedule, prefetched length-aware
// batching, atomic resumable checkpoints, metrics, sample captions and loss
// plots. Its config keys reuse the original train.py flag names.
package train

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Config is one training run, read from YAML and --set overrides. Keys that
// exist in the original train.py keep its flag names.
type Config struct {
	Data             string  `yaml:"data"`               // feature store dir
	VerifyData       bool    `yaml:"verify_data"`        // hash every store shard on open (else only changed ones)
	OutDir           string  `yaml:"out_dir"`            // parent of the run dir
	Prefix           string  `yaml:"prefix"`             // run name: the run dir is out_dir/prefix
	Epochs           int     `yaml:"epochs"`             //
	SaveEvery        int     `yaml:"save_every"`         // epochs between epoch checkpoints
	PrefixLength     int64   `yaml:"prefix_length"`      // L
	PrefixLengthClip int64   `yaml:"prefix_length_clip"` // transformer mapper's clip_length
	BS               int     `yaml:"bs"`                 // batch size (per micro-batch)
	OnlyPrefix       bool    `yaml:"only_prefix"`        // freeze GPT-2: only the mapper trains
	MappingType      string  `yaml:"mapping_type"`       // mlp | transformer
	NumLayers        int64   `yaml:"num_layers"`         // transformer mapper layers
	NormalizePrefix  bool    `yaml:"normalize_prefix"`   //
	LR               float64 `yaml:"lr"`                 //
	WarmupSteps      int     `yaml:"warmup_steps"`       // optimizer steps
	WeightDecay      float64 `yaml:"weight_decay"`       // decoupled, HF AdamW; 0 = off (the original)
	Seed             int64   `yaml:"seed"`               //
	Device           string  `yaml:"device"`             // cpu | cuda
	GPT2             string  `yaml:"gpt2"`               // HF weights dir/file, or a preset name with gpt2_random
	GPT2Config       string  `yaml:"gpt2_config"`        // HF config.json, preset, or "preset:key=v,..."
	GPT2Random       bool    `yaml:"gpt2_random"`        // random GPT-2 init instead of loading weights
	Tokenizer        string  `yaml:"tokenizer"`          // vocab.json+merges.txt dir; "" = default; "bytelevel" = 257-token test vocab
	GradAccum        int     `yaml:"grad_accum"`         // micro-batches per optimizer step
	GradClip         float64 `yaml:"grad_clip"`          // max global grad norm; 0 = off
	TrainSplit       string  `yaml:"train_split"`        //
	ValSplit         string  `yaml:"val_split"`          // "" or a split with no captions = no validation
	ValEvery         int     `yaml:"val_every"`          // optimizer steps; 0 = only per epoch
	ValBatches       int     `yaml:"val_batches"`        // batches per validation; 0 = all
	LogEvery         int     `yaml:"log_every"`          // optimizer steps between metrics lines
	CkptEvery        int     `yaml:"ckpt_every"`         // optimizer steps; 0 = off
	KeepLast         int     `yaml:"keep_last"`          // step checkpoints kept; 0 = all
	MaxTokens        string  `yaml:"max_tokens"`         // caption token cap; "auto" = min(mean+10*std, max)
	BucketByLength   bool    `yaml:"bucket_by_length"`   // batch captions of similar length together
	SampleCaptions   int     `yaml:"sample_captions"`    // val captions generated per epoch
	Dropout          string  `yaml:"dropout"`            // "" = GPT-2 config's; else one value for all GPT-2 dropouts
	Progress         bool    `yaml:"progress"`           // progress bar on stderr
	DistBackend      string  `yaml:"dist_backend"`       // data-parallel: "" = nccl on cuda, gloo on cpu
	DistTimeout      string  `yaml:"dist_timeout"`       // data-parallel: collective/rendezvous timeout ("" = 10m)
	DistBucketMB     float64 `yaml:"dist_bucket_mb"`     // data-parallel: gradient all-reduce bucket cap, MiB (DDP's bucket_cap_mb)
	DistOverlap      string  `yaml:"dist_overlap"`       // data-parallel: all-reduce during backward: auto (on with nccl) | on | off
	InitFrom         string  `yaml:"init_from"`          // model dir (or run dir) to start from; its model keys win
	Precision        string  `yaml:"precision"`          // fp32 | bf16 | fp16 (CUDA): matmul precision, fp32 master weights

	// given holds the keys the YAML file or --set named, so init_from can
	// tell a key set to its default from one left alone.
	given map[string]bool
}

// Default is the paper's COCO MLP setting over ViT-B/32 features.
func Default() Config {
	return Config{
		OutDir: "runs", Prefix: "coco_prefix", Epochs: 10, SaveEvery: 1,
		PrefixLength: 10, PrefixLengthClip: 10, BS: 40, MappingType: "mlp", NumLayers: 8,
		LR: 2e-5, WarmupSteps: 5000, Seed: 0, Device: "cpu", GPT2: "gpt2", GPT2Config: "",
		GradAccum: 1, TrainSplit: "train", ValSplit: "val", ValBatches: 50, LogEvery: 10,
		KeepLast: 3, MaxTokens: "auto", SampleCaptions: 4, Progress: true, Precision: "fp32",
		DistBucketMB: 25, DistOverlap: "auto",
	}
}

// LoadConfig reads a YAML file over the defaults, then applies key=value
// overrides. Unknown keys and bad values are errors naming the key.
func LoadConfig(path string, sets []string) (Config, error) {
	c := Default()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return c, fmt.Errorf("config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
			return c, fmt.Errorf("config %s: %s", path, nameKeys(data, err))
		}
		c.markGiven(data)
	}
	for _, s := range sets {
		if err := c.Set(s); err != nil {
			return c, err
		}
	}
	if err := c.Validate(); err != nil {
		if path != "" {
			return c, fmt.Errorf("config %s: %w", path, err)
		}
		return c, err
	}
	return c, nil
}

// Keys lists the config keys, sorted.
func Keys() []string {
	t := reflect.TypeOf(Config{})
	var out []string
	for i := 0; i < t.NumField(); i++ {
		if k := t.Field(i).Tag.Get("yaml"); k != "" {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// Set applies one "key=value" override, parsing value as the key's type.
func (c *Config) Set(kv string) error {
	key, val, ok := strings.Cut(kv, "=")
	key = strings.TrimSpace(key)
	if !ok || key == "" {
		return fmt.Errorf("--set %q: want key=value", kv)
	}
	v := reflect.ValueOf(c).Elem()
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		if t.Field(i).Tag.Get("yaml") != key {
			continue
		}
		c.markKey(key)
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(val)
		case reflect.Bool:
			b, err := strconv.ParseBool(val)
			if err != nil {
				return fmt.Errorf("--set %s: %q is not a boolean", key, val)
			}
			f.SetBool(b)
		case reflect.Int, reflect.Int64:
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return fmt.Errorf("--set %s: %q is not an integer", key, val)
			}
			f.SetInt(n)
		case reflect.Float64:
			x, err := strconv.ParseFloat(val, 64)
			if err != nil {
				return fmt.Errorf("--set %s: %q is not a number", key, val)
			}
			f.SetFloat(x)
		}
		return nil
	}
	return fmt.Errorf("--set %s: unknown config key (known: %s)", key, strings.Join(Keys(), ", "))
}

// Validate checks values that would otherwise fail deep inside training.
func (c Config) Validate() error {
	bad := func(key string, format string, args ...any) error {
		return fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...))
	}
	switch {
	case c.Data == "":
		return bad("data", "feature store directory is required")
	case c.Prefix == "" || strings.ContainsAny(c.Prefix, `/\`):
		return bad("prefix", "run name %q must be non-empty and contain no path separator", c.Prefix)
	case c.Epochs < 0:
		return bad("epochs", "must be 0 (save the initialized model) or positive, got %d", c.Epochs)
	case c.SaveEvery <= 0:
		return bad("save_every", "must be positive, got %d", c.SaveEvery)
	case c.PrefixLength <= 0:
		return bad("prefix_length", "must be positive, got %d", c.PrefixLength)
	case c.BS <= 0:
		return bad("bs", "must be positive, got %d", c.BS)
	case c.MappingType != "mlp" && c.MappingType != "transformer":
		return bad("mapping_type", "%q is not mlp or transformer", c.MappingType)
	case c.MappingType == "transformer" && c.PrefixLengthClip <= 0:
		return bad("prefix_length_clip", "must be positive for the transformer mapper, got %d", c.PrefixLengthClip)
	case c.MappingType == "transformer" && c.NumLayers <= 0:
		return bad("num_layers", "must be positive for the transformer mapper, got %d", c.NumLayers)
	case !(c.LR > 0) || math.IsInf(c.LR, 0):
		return bad("lr", "must be positive and finite, got %g", c.LR)
	case c.WarmupSteps < 0:
		return bad("warmup_steps", "must be >= 0, got %d", c.WarmupSteps)
	case !(c.WeightDecay >= 0) || math.IsInf(c.WeightDecay, 0):
		return bad("weight_decay", "must be >= 0 and finite, got %g", c.WeightDecay)
	case c.Device != "cpu" && c.Device != "cuda":
		return bad("device", "%q is not cpu or cuda", c.Device)
	case c.GPT2 == "" && c.GPT2Config == "":
		return bad("gpt2", "weights path or preset name is required")
	case c.GradAccum <= 0:
		return bad("grad_accum", "must be positive, got %d", c.GradAccum)
	case !(c.GradClip >= 0) || math.IsInf(c.GradClip, 0):
		return bad("grad_clip", "must be >= 0 and finite (0 = off), got %g", c.GradClip)
	case c.TrainSplit == "":
		return bad("train_split", "must name a split of the store")
	case c.ValEvery < 0:
		return bad("val_every", "must be >= 0, got %d", c.ValEvery)
	case c.ValBatches < 0:
		return bad("val_batches", "must be >= 0, got %d", c.ValBatches)
	case c.LogEvery <= 0:
		return bad("log_every", "must be positive, got %d", c.LogEvery)
	case c.CkptEvery < 0:
		return bad("ckpt_every", "must be >= 0, got %d", c.CkptEvery)
	case c.KeepLast < 0:
		return bad("keep_last", "must be >= 0, got %d", c.KeepLast)
	case c.SampleCaptions < 0:
		return bad("sample_captions", "must be >= 0, got %d", c.SampleCaptions)
	}
	if err := c.validatePrecision(); err != nil {
		return err
	}
	if _, err := c.maxTokensCap(); err != nil {
		return err
	}
	if _, err := c.dropout(); err != nil {
		return err
	}
	return c.validateDist()
}

// maxTokensCap is the explicit caption cap, or 0 for "auto".
func (c Config) maxTokensCap() (int, error) {
	if c.MaxTokens == "" || c.MaxTokens == "auto" {
		return 0, nil
	}
	n, err := strconv.Atoi(c.MaxTokens)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("max_tokens: %q is not \"auto\" or a positive integer", c.MaxTokens)
	}
	return n, nil
}

// dropout is the override (ok=false: keep the GPT-2 config's).
func (c Config) dropout() (p float64, err error) {
	if c.Dropout == "" {
		return -1, nil
	}
	p, err = strconv.ParseFloat(c.Dropout, 64)
	if err != nil || p < 0 || p >= 1 {
		return 0, fmt.Errorf("dropout: %q is not a probability in [0, 1)", c.Dropout)
	}
	return p, nil
}

// RunDir is out_dir/prefix.
func (c Config) RunDir() string {
	if c.OutDir == "" {
		return c.Prefix
	}
	return c.OutDir + string(os.PathSeparator) + c.Prefix
}

// nameKeys rewrites yaml.v3's "line N: cannot unmarshal ..." type errors to
// name the key on that line, which yaml.v3 leaves out.
func nameKeys(data []byte, err error) string {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err.Error()
	}
	var root yaml.Node
	keyAt := map[int]string{}
	if yaml.Unmarshal(data, &root) == nil && len(root.Content) == 1 && root.Content[0].Kind == yaml.MappingNode {
		m := root.Content[0].Content
		for i := 0; i+1 < len(m); i += 2 {
			keyAt[m[i+1].Line] = m[i].Value
		}
	}
	msgs := make([]string, len(te.Errors))
	for i, e := range te.Errors {
		msgs[i] = e
		var line int
		if _, serr := fmt.Sscanf(e, "line %d:", &line); serr == nil {
			if k, ok := keyAt[line]; ok {
				msgs[i] = fmt.Sprintf("%s: bad value (%s)", k, e)
			}
		}
	}
	return strings.Join(msgs, "; ")
}
