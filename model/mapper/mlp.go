package mapper

import (
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/model/nn"
)

// mlpMapper is the official MLP((D, E·L/2, E·L)): Linear → Tanh → Linear,
// reshaped to [L, E]; parameters model.0.* and model.2.*.
type mlpMapper struct {
	fc1, fc2 *nn.Linear
	cfg      Config
}

func newMLP(p nn.Path, c Config) *mlpMapper {
	hidden := c.EmbedDim * c.PrefixLength / 2
	return &mlpMapper{
		fc1: nn.NewLinear(p.Sub("model").Sub("0"), c.ClipDim, hidden, true),
		fc2: nn.NewLinear(p.Sub("model").Sub("2"), hidden, c.EmbedDim*c.PrefixLength, true),
		cfg: c,
	}
}

func (m *mlpMapper) Forward(x *ts.Tensor, train bool) *ts.Tensor {
	h := m.fc1.Forward(x).MustTanh(true)
	out := m.fc2.Forward(h)
	h.MustDrop()
	return out.MustView([]int64{-1, m.cfg.PrefixLength, m.cfg.EmbedDim}, true)
}
