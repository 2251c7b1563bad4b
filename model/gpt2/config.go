// Package gpt2 is GPT-2 with HuggingFace's semantics and parameter names
// (GPT2LMHeadModel): any size from its config.json, inputs_embeds, attention
// mask, dropout in training mode and a key/value cache for generation.
package gpt2

import (
	"encoding/json"
	"fmt"
)

// Config holds the fields of HuggingFace's GPT2Config that change the
// computation. JSON names are the config.json keys.
type Config struct {
	VocabSize        int64   `json:"vocab_size" yaml:"vocab_size"`
	NPositions       int64   `json:"n_positions" yaml:"n_positions"`
	NEmbd            int64   `json:"n_embd" yaml:"n_embd"`
	NLayer           int64   `json:"n_layer" yaml:"n_layer"`
	NHead            int64   `json:"n_head" yaml:"n_head"`
	NInner           int64   `json:"n_inner,omitempty" yaml:"n_inner,omitempty"` // 0 = 4*n_embd
	Activation       string  `json:"activation_function" yaml:"activation_function"`
	ResidPdrop       float64 `json:"resid_pdrop" yaml:"resid_pdrop"`
	EmbdPdrop        float64 `json:"embd_pdrop" yaml:"embd_pdrop"`
	AttnPdrop        float64 `json:"attn_pdrop" yaml:"attn_pdrop"`
	LayerNormEps     float64 `json:"layer_norm_epsilon" yaml:"layer_norm_epsilon"`
	InitializerRange float64 `json:"initializer_range" yaml:"initializer_range"`
}

// Presets are the published GPT-2 sizes.
var Presets = map[string]Config{
	"gpt2":        withSize(768, 12, 12),
	"gpt2-medium": withSize(1024, 24, 16),
	"gpt2-large":  withSize(1280, 36, 20),
	"gpt2-xl":     withSize(1600, 48, 25),
}

func withSize(embd, layers, heads int64) Config {
	c := defaults()
	c.NEmbd, c.NLayer, c.NHead = embd, layers, heads
	return c
}

// defaults are GPT2Config's defaults (gpt2 small).
func defaults() Config {
	return Config{
		VocabSize: 50257, NPositions: 1024, NEmbd: 768, NLayer: 12, NHead: 12,
		Activation: "gelu_new", ResidPdrop: 0.1, EmbdPdrop: 0.1, AttnPdrop: 0.1,
		LayerNormEps: 1e-5, InitializerRange: 0.02,
	}
}

// ParseConfig reads a HuggingFace config.json; absent keys take GPT2Config's
// defaults. Settings this implementation does not reproduce are errors.
func ParseConfig(data []byte) (Config, error) {
	c := defaults()
	var raw struct {
		Config
		NInner               *int64 `json:"n_inner"`
		ScaleByInverseLayer  bool   `json:"scale_attn_by_inverse_layer_idx"`
		ReorderAndUpcastAttn bool   `json:"reorder_and_upcast_attn"`
		ScaleAttnWeights     *bool  `json:"scale_attn_weights"`
		AddCrossAttention    bool   `json:"add_cross_attention"`
		LegacyNCtx           int64  `json:"n_ctx"`
	}
	raw.Config = c
	if err := json.Unmarshal(data, &raw); err != nil {
		return Config{}, fmt.Errorf("GPT-2 config: %w", err)
	}
	c = raw.Config
	c.NInner = 0
	if raw.NInner != nil {
		c.NInner = *raw.NInner
	}
	switch {
	case raw.ScaleByInverseLayer:
		return Config{}, fmt.Errorf("GPT-2 config: scale_attn_by_inverse_layer_idx=true is not supported")
	case raw.ScaleAttnWeights != nil && !*raw.ScaleAttnWeights:
		return Config{}, fmt.Errorf("GPT-2 config: scale_attn_weights=false is not supported")
	case raw.AddCrossAttention:
		return Config{}, fmt.Errorf("GPT-2 config: add_cross_attention is not supported")
	}
	// reorder_and_upcast_attn only changes fp16 numerics; fp32 results are the same.
	return c, c.Validate()
}

// Validate checks sizes that would otherwise fail deep inside a forward pass.
func (c Config) Validate() error {
	switch {
	case c.VocabSize <= 0 || c.NPositions <= 0 || c.NEmbd <= 0 || c.NLayer <= 0 || c.NHead <= 0:
		return fmt.Errorf("GPT-2 config: sizes must be positive (vocab_size %d, n_positions %d, n_embd %d, n_layer %d, n_head %d)",
			c.VocabSize, c.NPositions, c.NEmbd, c.NLayer, c.NHead)
	case c.NEmbd%c.NHead != 0:
		return fmt.Errorf("GPT-2 config: n_embd %d is not divisible by n_head %d", c.NEmbd, c.NHead)
	case c.Activation != "gelu_new" && c.Activation != "gelu" && c.Activation != "relu" && c.Activation != "gelu_pytorch_tanh":
		return fmt.Errorf("GPT-2 config: activation_function %q is not supported (gelu_new, gelu_pytorch_tanh, gelu, relu)", c.Activation)
	case c.LayerNormEps <= 0:
		return fmt.Errorf("GPT-2 config: layer_norm_epsilon must be positive")
	}
	return nil
}

// Inner is the MLP width.
func (c Config) Inner() int64 {
	if c.NInner > 0 {
		return c.NInner
	}
	return 4 * c.NEmbd
}

// JSON renders the config as a HuggingFace config.json.
func (c Config) JSON() []byte {
	m := map[string]any{
		"model_type": "gpt2", "architectures": []string{"GPT2LMHeadModel"},
		"vocab_size": c.VocabSize, "n_positions": c.NPositions, "n_ctx": c.NPositions,
		"n_embd": c.NEmbd, "n_layer": c.NLayer, "n_head": c.NHead,
		"activation_function": c.Activation, "resid_pdrop": c.ResidPdrop, "embd_pdrop": c.EmbdPdrop,
		"attn_pdrop": c.AttnPdrop, "layer_norm_epsilon": c.LayerNormEps, "initializer_range": c.InitializerRange,
		"bos_token_id": 50256, "eos_token_id": 50256,
	}
	if c.NInner > 0 {
		m["n_inner"] = c.NInner
	}
	b, _ := json.MarshalIndent(m, "", "  ")
	return b
}
