package generate

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseStrategy reads a strategy name as the CLI and the HTTP API accept it
// ("" keeps the model's default).
func ParseStrategy(s string) (Strategy, error) {
	switch st := Strategy(strings.TrimSpace(s)); st {
	case "", Greedy, Beam, Sample:
		return st, nil
	}
	return "", fmt.Errorf("strategy %q: want greedy, beam or sample", s)
}

// ParseStopTokens reads comma-separated stop token ids; "" gives nil (the
// default, "."), "none" an empty non-nil list (no stop token).
func ParseStopTokens(s string) ([]int, error) {
	switch s = strings.TrimSpace(s); s {
	case "":
		return nil, nil
	case "none":
		return []int{}, nil
	}
	var ids []int
	for _, f := range strings.Split(s, ",") {
		id, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || id < 0 {
			return nil, fmt.Errorf("stop %q: token ids must be non-negative integers, or \"none\"", s)
		}
		ids = append(ids, id)
	}
	return ids, nil
}
