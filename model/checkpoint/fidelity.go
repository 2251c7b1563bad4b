package checkpoint

import (
	"fmt"

	"github.com/clipcap/clipcap/model/clipcap"
	"github.com/clipcap/clipcap/model/generate"
	"github.com/clipcap/clipcap/model/mapper"
)

// OfficialGeneration is the original predict.py's default decoding
// (use_beam_search=False, also the MLP notebook's): greedy, stop at "."
// (id 13), at most 67 tokens. Imported official checkpoints get it in their
// generation section, so they caption as users of the original see.
func OfficialGeneration() generate.Options {
	return generate.Options{Strategy: generate.Greedy, MaxTokens: 67, StopTokens: []int{generate.DefaultStop}}
}

// NormalizeWarning is what an official import should tell the user when
// the checkpoint is the transformer variant and neither --normalize-prefix
// nor --no-normalize-prefix said how its CLIP embeddings were scaled: the
// original's transformer notebook L2-normalises them, predict.py does not,
// and the wrong choice silently feeds the mapper the wrong scale. "" when
// there is nothing to say.
func NormalizeWarning(c clipcap.Config, chosen bool) string {
	if chosen || c.Mapper.Kind != mapper.Transformer {
		return ""
	}
	return fmt.Sprintf("warning: this is the transformer variant (prefix %d, %d layers), which the original's transformer notebook "+
		"feeds L2-normalised CLIP embeddings; imported with normalize_prefix: false. If it was trained with --normalize_prefix "+
		"(the official COCO transformer weights were), import again with --normalize-prefix; --no-normalize-prefix keeps raw "+
		"embeddings and silences this warning.", c.Mapper.PrefixLength, c.Mapper.NumLayers)
}
