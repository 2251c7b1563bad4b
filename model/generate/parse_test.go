package generate

import (
	"reflect"
	"testing"
)

func TestParseStrategy(t *testing.T) {
	for in, want := range map[string]Strategy{"": "", "greedy": Greedy, " beam ": Beam, "sample": Sample} {
		if got, err := ParseStrategy(in); err != nil || got != want {
			t.Errorf("%q: %q %v, want %q", in, got, err, want)
		}
	}
	if _, err := ParseStrategy("nucleus"); err == nil {
		t.Error("unknown strategy: no error")
	}
}

func TestParseStopTokens(t *testing.T) {
	cases := map[string][]int{"": nil, "none": {}, "13": {13}, "13, 30": {13, 30}}
	for in, want := range cases {
		got, err := ParseStopTokens(in)
		if err != nil || !reflect.DeepEqual(got, want) || (got == nil) != (want == nil) {
			t.Errorf("%q: %#v %v, want %#v", in, got, err, want)
		}
	}
	for _, bad := range []string{"x", "13,", "-1"} {
		if _, err := ParseStopTokens(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
