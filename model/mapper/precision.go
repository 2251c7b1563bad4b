package mapper

import (
	"fmt"

	"github.com/clipcap/clipcap/model/nn"
)

// SetPrecision stores the mapper's linear layers in p for inference (see
// nn.Linear.SetPrecision); fp32 restores them.
func SetPrecision(m Mapper, p nn.Precision) error {
	ls, err := Linears(m)
	if err != nil {
		return err
	}
	for _, l := range ls {
		if _, err := l.SetPrecision(p); err != nil {
			return err
		}
	}
	return nil
}

// Linears lists the mapper's linear layers, the ones SetPrecision converts
// (model files that store them quantized load into these).
func Linears(m Mapper) ([]*nn.Linear, error) {
	var ls []*nn.Linear
	switch m := m.(type) {
	case *mlpMapper:
		ls = []*nn.Linear{m.fc1, m.fc2}
	case *transformerMapper:
		ls = append(ls, m.linear)
		for _, l := range m.layers {
			ls = append(ls, l.toQueries, l.toKeysValues, l.project, l.fc1, l.fc2)
		}
	default:
		return nil, fmt.Errorf("mapper %T: no low-precision support", m)
	}
	return ls, nil
}
