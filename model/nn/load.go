package nn

import (
	"fmt"

	"github.com/clipcap/clipcap/internal/tensorfile"
)

// LoadInto copies tensors from src into the store's parameters. rename maps a
// store parameter name to the name in src ("" = not in src). Every store
// parameter must be found unless optional says otherwise; names in src that
// no parameter asked for are returned as unused (callers decide whether that
// is an error). Errors name the file and the tensor.
func LoadInto(store *Store, src tensorfile.Lookup, file string, rename func(string) string, optional func(string) bool) (unused []string, err error) {
	have := map[string]bool{}
	for _, n := range src.Names() {
		have[n] = true
	}
	used := map[string]bool{}
	var missing []string
	for _, p := range store.All() {
		srcName := rename(p.Name)
		if srcName == "" || !have[srcName] {
			if optional != nil && optional(p.Name) {
				continue
			}
			missing = append(missing, p.Name)
			continue
		}
		rt, err := src.Tensor(srcName)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		t, err := tensorfile.ToTorch(srcName, rt, store.Device)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		err = store.Assign(p.Name, t)
		t.MustDrop()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		used[srcName] = true
	}
	if len(missing) > 0 {
		more := ""
		if len(missing) > 5 {
			more = fmt.Sprintf(" and %d more", len(missing)-5)
			missing = missing[:5]
		}
		return nil, fmt.Errorf("%s: missing tensors %v%s (is this the right kind of checkpoint?)", file, missing, more)
	}
	for _, n := range src.Names() {
		if !used[n] {
			unused = append(unused, n)
		}
	}
	return unused, nil
}

// StateDict copies every parameter of the store into raw float32 tensors
// under its store name: what the tensor-file writers take.
func (s *Store) StateDict() (map[string]tensorfile.RawTensor, error) {
	out := map[string]tensorfile.RawTensor{}
	for _, p := range s.All() {
		rt, err := tensorfile.FromTorch(p.Tensor)
		if err != nil {
			return nil, fmt.Errorf("parameter %s: %w", p.Name, err)
		}
		out[p.Name] = rt
	}
	return out, nil
}
