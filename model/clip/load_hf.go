package clip

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/clipcap/clipcap/internal/tensorfile"
)

// hfView maps Hugging Face CLIPVisionModelWithProjection names onto
// OpenAI's: q/k/v projections are concatenated into in_proj (in that order,
// as nn.MultiheadAttention packs them) and visual_projection [D, W] is
// transposed into proj [W, D].
func hfView(path string, src tensorfile.Lookup, have map[string]bool, p string) (*view, error) {
	v := &view{shapes: map[string][]int64{}, get: map[string]func() (tensorfile.RawTensor, error){}}
	vm := p + "vision_model."
	used := map[string]bool{vm + "embeddings.position_ids": true}
	direct := func(openai, hf string) error {
		if !have[hf] {
			return fmt.Errorf("%s: no tensor %q in this Hugging Face CLIP checkpoint", path, hf)
		}
		t, err := src.Tensor(hf)
		if err != nil {
			return err
		}
		used[hf] = true
		v.add(openai, t.Shape, func() (tensorfile.RawTensor, error) { return src.Tensor(hf) })
		return nil
	}
	pairs := [][2]string{
		{"visual.conv1.weight", vm + "embeddings.patch_embedding.weight"},
		{"visual.class_embedding", vm + "embeddings.class_embedding"},
		{"visual.positional_embedding", vm + "embeddings.position_embedding.weight"},
		{"visual.ln_pre.weight", vm + "pre_layrnorm.weight"},
		{"visual.ln_pre.bias", vm + "pre_layrnorm.bias"},
		{"visual.ln_post.weight", vm + "post_layernorm.weight"},
		{"visual.ln_post.bias", vm + "post_layernorm.bias"},
	}
	for i := 0; ; i++ {
		h := vm + "encoder.layers." + strconv.Itoa(i) + "."
		if !have[h+"self_attn.q_proj.weight"] {
			break
		}
		o := "visual.transformer.resblocks." + strconv.Itoa(i) + "."
		for _, s := range []string{"weight", "bias"} {
			pairs = append(pairs,
				[2]string{o + "attn.out_proj." + s, h + "self_attn.out_proj." + s},
				[2]string{o + "ln_1." + s, h + "layer_norm1." + s},
				[2]string{o + "ln_2." + s, h + "layer_norm2." + s},
				[2]string{o + "mlp.c_fc." + s, h + "mlp.fc1." + s},
				[2]string{o + "mlp.c_proj." + s, h + "mlp.fc2." + s})
			qkv := []string{h + "self_attn.q_proj." + s, h + "self_attn.k_proj." + s, h + "self_attn.v_proj." + s}
			if err := addConcat(v, src, have, used, path, o+"attn.in_proj_"+s, qkv); err != nil {
				return nil, err
			}
		}
	}
	for _, pr := range pairs {
		if err := direct(pr[0], pr[1]); err != nil {
			return nil, err
		}
	}
	proj := p + "visual_projection.weight"
	if !have[proj] {
		return nil, fmt.Errorf("%s: no %q: a CLIPVisionModel without projection has no CLIP embedding; use CLIPVisionModelWithProjection or CLIPModel weights", path, proj)
	}
	t, err := src.Tensor(proj)
	if err != nil {
		return nil, err
	}
	if len(t.Shape) != 2 {
		return nil, fmt.Errorf("%s: %q has shape %v, want [embed_dim, width]", path, proj, t.Shape)
	}
	used[proj] = true
	v.add("visual.proj", []int64{t.Shape[1], t.Shape[0]}, func() (tensorfile.RawTensor, error) {
		t, err := src.Tensor(proj)
		if err != nil {
			return t, err
		}
		return transpose2D(t), nil
	})
	// Vision tensors we did not map mean a different architecture.
	var extra []string
	for n := range have {
		if strings.HasPrefix(n, vm) && !used[n] {
			extra = append(extra, n)
		}
	}
	if len(extra) > 0 {
		return nil, fmt.Errorf("%s: Hugging Face vision tensors this loader does not know: %s", path, firstFew(extra))
	}
	return v, nil
}

// addConcat adds openai as the dim-0 concatenation of the hf tensors.
func addConcat(v *view, src tensorfile.Lookup, have, used map[string]bool, path, openai string, hf []string) error {
	shape := []int64{}
	var dtype tensorfile.Dtype
	for i, n := range hf {
		if !have[n] {
			return fmt.Errorf("%s: no tensor %q in this Hugging Face CLIP checkpoint", path, n)
		}
		t, err := src.Tensor(n)
		if err != nil {
			return err
		}
		if len(t.Shape) == 0 {
			return fmt.Errorf("%s: %q is a scalar", path, n)
		}
		if i == 0 {
			shape = append(shape, t.Shape...)
			dtype = t.Dtype
		} else {
			if t.Dtype != dtype || !sameTail(shape, t.Shape) {
				return fmt.Errorf("%s: %q (%s %v) does not match %q (%s %v)", path, n, t.Dtype, t.Shape, hf[0], dtype, shape)
			}
			shape[0] += t.Shape[0]
		}
		used[n] = true
	}
	v.add(openai, shape, func() (tensorfile.RawTensor, error) {
		out := tensorfile.RawTensor{Dtype: dtype, Shape: shape}
		for _, n := range hf {
			t, err := src.Tensor(n)
			if err != nil {
				return out, err
			}
			out.Data = append(out.Data, t.Data...)
		}
		return out, nil
	})
	return nil
}

func sameTail(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 1; i < len(a); i++ {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// transpose2D swaps the two axes of a row-major matrix, element by element
// whatever the dtype.
func transpose2D(t tensorfile.RawTensor) tensorfile.RawTensor {
	r, c := int(t.Shape[0]), int(t.Shape[1])
	es := t.Dtype.Size()
	out := make([]byte, len(t.Data))
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			copy(out[(j*r+i)*es:(j*r+i+1)*es], t.Data[(i*c+j)*es:(i*c+j+1)*es])
		}
	}
	return tensorfile.RawTensor{Dtype: t.Dtype, Shape: []int64{int64(c), int64(r)}, Data: out}
}
