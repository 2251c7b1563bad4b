// Package mapper holds ClipCap's two mapping networks from a CLIP embedding
// to a GPT-2 prefix, under the official repository's parameter names
// (clip_project.*).
package mapper

import (
	"fmt"

	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/model/nn"
)

// Kind names a mapper type as the official train.py's --mapping_type does.
type Kind string

const (
	MLP         Kind = "mlp"
	Transformer Kind = "transformer"
)

// Config sizes a mapper.
type Config struct {
	Kind         Kind  `yaml:"type"`
	ClipDim      int64 `yaml:"clip_dim"`      // D: 512 for ViT-B/32, 640 for RN50x4
	EmbedDim     int64 `yaml:"embed_dim"`     // E: GPT-2 width
	PrefixLength int64 `yaml:"prefix_length"` // L
	ClipLength   int64 `yaml:"clip_length,omitempty"`
	NumLayers    int64 `yaml:"num_layers,omitempty"`
	NumHeads     int64 `yaml:"num_heads,omitempty"` // the official code fixes 8
}

// Validate checks the sizes.
func (c Config) Validate() error {
	if c.ClipDim <= 0 || c.EmbedDim <= 0 || c.PrefixLength <= 0 {
		return fmt.Errorf("mapper: clip_dim, embed_dim and prefix_length must be positive (got %d, %d, %d)", c.ClipDim, c.EmbedDim, c.PrefixLength)
	}
	switch c.Kind {
	case MLP:
	case Transformer:
		if c.ClipLength <= 0 || c.NumLayers <= 0 {
			return fmt.Errorf("mapper: transformer needs positive clip_length and num_layers (got %d, %d)", c.ClipLength, c.NumLayers)
		}
		if c.EmbedDim%c.heads() != 0 {
			return fmt.Errorf("mapper: embed_dim %d is not divisible by %d heads", c.EmbedDim, c.heads())
		}
	default:
		return fmt.Errorf("mapper: unknown type %q (mlp or transformer)", c.Kind)
	}
	return nil
}

func (c Config) heads() int64 {
	if c.NumHeads > 0 {
		return c.NumHeads
	}
	return 8
}

// Mapper turns CLIP embeddings [B, D] into prefix embeddings [B, L, E].
type Mapper interface {
	Forward(clip *ts.Tensor, train bool) *ts.Tensor
}

// New builds the mapper under p (normally root.Sub("clip_project")).
func New(p nn.Path, c Config) (Mapper, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.Kind == MLP {
		return newMLP(p, c), nil
	}
	return newTransformer(p, c), nil
}
